"""Forensic watermark detection: read the A/B bits back out of a leaked copy."""
from .detector import SoftBit, WatermarkGeometry, geometry_for_source, read_soft_bits

__all__ = ["SoftBit", "WatermarkGeometry", "geometry_for_source", "read_soft_bits"]
