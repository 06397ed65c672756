-- A detection can be cancelled (DELETE /api/forensics/detect/{id}): its worker sees the
-- status change at its next lease renewal and kills its ffmpeg children; the record stays
-- (who cancelled what, when), the suspect object is removed.
ALTER TABLE detections
  MODIFY status ENUM('queued','running','done','failed','cancelled') NOT NULL DEFAULT 'queued';
