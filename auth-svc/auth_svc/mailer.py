"""Outgoing mail (password reset links) when SMTP_HOST is set; without it the admin copies
the link from the admin API/page. Plain smtplib: STARTTLS unless SMTP_STARTTLS is off."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flask import current_app


def enabled() -> bool:
    return bool(current_app.config["SMTP_HOST"])


def send(to: str, subject: str, body: str) -> None:
    cfg = current_app.config
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = cfg["SMTP_FROM"], to, subject
    msg.set_content(body)
    with smtplib.SMTP(cfg["SMTP_HOST"], int(cfg["SMTP_PORT"]), timeout=15) as smtp:
        if cfg["SMTP_STARTTLS"]:
            smtp.starttls()
        if cfg["SMTP_USERNAME"]:
            smtp.login(cfg["SMTP_USERNAME"], cfg["SMTP_PASSWORD"])
        smtp.send_message(msg)
