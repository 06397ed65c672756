"""Password rules per NIST SP 800-63B 5.1.1.2 and the OWASP Authentication Cheat Sheet: a
minimum length and no composition rules, every printable character and spaces allowed, and
a refusal of passwords that are common, breached or guessable from the account's own
details. The common/breached list and the guessability estimate are zxcvbn's (its bundled
frequency lists: the 30,000 most common passwords from leaked sets, plus English words and
names), so nothing here needs the network."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from svcommon.errors import APIError

MAX_LENGTH = 256
# zxcvbn refuses more than 72 characters (its time grows with the input); the first 72 decide the
# score of any password that long.
SCORED_PREFIX = 72
_COMMON = frozenset(FREQUENCY_LISTS["passwords"])


@dataclass
class Verdict:
    score: int                       # zxcvbn 0 (guessable) .. 4 (very unguessable)
    errors: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check(password: str, username: str = "", email: str = "") -> Verdict:
    """All the reasons this password is refused at once (an empty list: accepted)."""
    min_length = int(current_app.config["PASSWORD_MIN_LENGTH"])
    min_score = int(current_app.config["PASSWORD_MIN_SCORE"])
    # The account's own details count as the first words an attacker tries (zxcvbn user_inputs).
    context = [v for v in (username, email, email.split("@")[0], "streamvault") if len(v) >= 3]
    result = zxcvbn(password[:SCORED_PREFIX], user_inputs=context) if password else None
    verdict = Verdict(score=result["score"] if result else 0)
    if len(password) < min_length:
        verdict.errors.append(f"Password must be at least {min_length} characters.")
    if len(password) > MAX_LENGTH:
        verdict.errors.append(f"Password must be at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in _COMMON or lowered.strip("0123456789!. ") in _COMMON and len(lowered) < 16:
        verdict.errors.append("Password is on a list of common or breached passwords.")
    elif result and len(password) >= min_length and result["score"] < min_score:
        warning = result["feedback"]["warning"]
        verdict.errors.append("Password is too easy to guess" + (f": {warning.rstrip('.')}." if warning else "."))
    if result:
        verdict.suggestions = list(result["feedback"]["suggestions"])
    return verdict


def refusals(password: str, username: str, email: str) -> list[str]:
    """Every reason ``password`` is refused for this account (none: accepted)."""
    return check(password, username, email).errors if password else ["Password is required."]


def require(password: str, username: str, email: str, name: str = "password") -> None:
    """A 400 listing every reason ``password`` is refused for this account (field ``name``)."""
    errors = refusals(password, username, email)
    if errors:
        raise APIError(400, "invalid_input", " ".join(errors), fields={name: errors})
