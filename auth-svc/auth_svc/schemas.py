"""Request and response models of auth-svc's JSON API (the OpenAPI document is made of them).
The request models are the input rules: a form is checked whole, every invalid field reported
at once in one 400 (``fields`` in the JSON error, a list on the pages). The password policy
of an existing account (change, reset) needs the account: password_policy.require."""
from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from svcommon import api_tokens, quota
from svcommon.text import has_invisible
from svcommon.openapi import PageQuery, Paged, Strict, refuse

from . import password_policy

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
Role = Literal["admin", "uploader", "viewer"]
ROLES: tuple[str, ...] = get_args(Role)
MAX_TOKEN_NAME = 64
MAX_TOKEN_EXPIRY_DAYS = 365
DEFAULT_TOKEN_EXPIRY_DAYS = 30


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SignUp(Strict):
    """Checked after the sign-up throttle (accounts.sign_up): the password policy costs CPU."""
    model_config = ConfigDict(strict=True, validate_default=True)
    username: str = Field("", description="3-32 letters, digits, '.', '_' or '-'")
    email: str = Field("", description="an email address of at most 254 characters (stored lowercased)")
    password: str = Field("", description="the password policy's rules (see POST /api/auth/password-check)")

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not value:
            raise refuse("invalid_input", "Username is required.")
        if not USERNAME_RE.match(value):
            raise refuse("invalid_input", "Username must be 3-32 letters, digits, '.', '_' or '-'.")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip().lower()
        if not value:
            raise refuse("invalid_input", "Email address is required.")
        if len(value) > 254 or not EMAIL_RE.match(value):
            raise refuse("invalid_input", "Email address is not valid.")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str, info: ValidationInfo) -> str:
        errors = password_policy.refusals(value, info.data.get("username", ""), info.data.get("email", ""))
        if errors:
            raise refuse("invalid_input", *errors)
        return value


class ServiceCredentials(Strict):
    """POST /api/auth/service-token (internal: never through the gateway)."""
    service: str = Field(min_length=1, max_length=32)
    secret: str = Field(min_length=1, max_length=256)


class PasswordCheck(BaseModel):
    # one over the policy's 256, so that the policy itself says "too long"
    password: str = Field(min_length=1, max_length=257)
    username: str | None = None
    email: str | None = None


class PasswordVerdict(BaseModel):
    ok: bool
    score: int
    errors: list[str]
    suggestions: list[str]


class RefreshBody(BaseModel):
    """Absent: the refresh cookie is used (then the CSRF header is required)."""
    refresh_token: str | None = None


class PublicUser(BaseModel):
    id: str
    username: str
    email: str
    role: Role


class Registered(BaseModel):
    user: PublicUser


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_at: str
    refresh_token: str
    user: PublicUser


class NewApiToken(Strict):
    model_config = ConfigDict(strict=True, validate_default=True)
    name: str = Field("", description=f"1-{MAX_TOKEN_NAME} printable characters")
    scopes: list[str] = Field([], description=f"a non-empty list of {', '.join(api_tokens.SCOPES)} "
                                              "(forensics: administrators only)")
    expires_in_days: int = Field(DEFAULT_TOKEN_EXPIRY_DAYS, description=f"1-{MAX_TOKEN_EXPIRY_DAYS}")

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value) -> str:
        name = value.strip() if isinstance(value, str) else ""
        if not name or len(name) > MAX_TOKEN_NAME or any(ord(c) < 0x20 or ord(c) == 0x7f for c in name) \
                or has_invisible(name):
            raise refuse("invalid_input", f"Name must be 1-{MAX_TOKEN_NAME} printable characters.")
        return name

    @field_validator("scopes", mode="before")
    @classmethod
    def _scopes(cls, value) -> list[str]:
        if not isinstance(value, list) or not value or not all(s in api_tokens.SCOPES for s in value):
            raise refuse("invalid_input", f"Scopes must be a non-empty list of {', '.join(api_tokens.SCOPES)}.")
        return [s for s in api_tokens.SCOPES if s in value]

    @field_validator("expires_in_days", mode="before")
    @classmethod
    def _expiry(cls, value) -> int:
        if type(value) is not int or not 1 <= value <= MAX_TOKEN_EXPIRY_DAYS:
            raise refuse("invalid_input", f"Expiry must be a whole number of days from 1 to {MAX_TOKEN_EXPIRY_DAYS}.")
        return value


class ApiToken(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: str
    expires_at: str
    expired: bool
    last_used_at: str | None
    last_used_ip: str | None


class IssuedApiToken(BaseModel):
    token: str
    api_token: ApiToken


class ApiTokenList(BaseModel):
    items: list[ApiToken]
    max_tokens: int
    max_expiry_days: int


class Fingerprint(Strict):
    """What the devices page shows of a device (as the browser says it)."""
    user_agent: str = Field("", max_length=512)
    screen: str = Field("", max_length=32)
    timezone: str = Field("", max_length=64)
    language: str = Field("", max_length=35)


class DeviceTokenRequest(Strict):
    fingerprint: Fingerprint = Fingerprint()


class DeviceToken(BaseModel):
    access_token: str
    token_type: Literal["DPoP"]
    expires_at: str
    device_id: str


class Device(BaseModel):
    id: str
    user_agent: str | None
    screen: str | None
    timezone: str | None
    language: str | None
    first_seen: str | None
    last_seen: str | None
    last_ip: str | None
    revoked: bool


class DeviceList(BaseModel):
    devices: list[Device]
    current: str | None


class UserQuery(PageQuery):
    q: str | None = None


class AdminUser(BaseModel):
    id: str
    username: str
    email: str
    role: str
    disabled: bool
    created_at: str | None
    upload_quota_bytes: int | None
    upload_quota_in_force: int | None
    used_bytes: int


class AdminUserPage(Paged):
    items: list[AdminUser]


class AdminUserChange(Strict):
    """At least one member; ``upload_quota_bytes`` absent keeps the quota, null is the default."""
    role: Role | None = None
    disabled: bool | None = None
    upload_quota_bytes: int | None = Field(None, ge=0, le=quota.MAX_QUOTA,
                                           description="0 = unlimited, null = the server default")


class ResetLink(BaseModel):
    expires_at: str
    url: str | None = None
    sent_to: str | None = None


class Jwks(BaseModel):
    """The public keys that verify access tokens (RFC 7517; ES256, by ``kid``)."""
    keys: list[dict[str, Any]]


class Refreshed(BaseModel):
    """The new pair; from the refresh cookie, the tokens travel only in the new cookies."""
    token_type: str
    expires_at: str
    user: PublicUser
    access_token: str | None = None
    refresh_token: str | None = None
