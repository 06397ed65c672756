"""Outgoing mail (password reset links) when SMTP_HOST is set; without it the admin copies
the link from the admin API/page. Plain smtplib: STARTTLS unless SMTP_STARTTLS is off."""
from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import current_app

from svcommon.errors import APIError

log = logging.getLogger("auth_svc.mailer")


def enabled() -> bool:
    return bool(current_app.config["SMTP_HOST"])


def send(to: str, subject: str, body: str) -> None:
    cfg = current_app.config
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = cfg["SMTP_FROM"], to, subject
    msg.set_content(body)
    try:
        with smtplib.SMTP(cfg["SMTP_HOST"], int(cfg["SMTP_PORT"]), timeout=15) as smtp:
            if cfg["SMTP_STARTTLS"]:
                smtp.starttls()
            if cfg["SMTP_USERNAME"]:
                smtp.login(cfg["SMTP_USERNAME"], cfg["SMTP_PASSWORD"])
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("mail not sent", extra={"detail": str(exc)[:300]})
        raise APIError(502, "mail_failed", "the mail server did not take the message; try again later")
