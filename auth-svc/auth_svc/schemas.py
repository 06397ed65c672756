"""Request and response models of auth-svc's JSON API (the OpenAPI document is made of them).
Requests are checked by type here; the account rules (password policy, usernames) stay in
validation.py, which reports every problem of a form at once."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from svcommon.openapi import Loose


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SignUp(BaseModel):
    username: str
    email: str
    password: str


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
    role: Literal["admin", "uploader", "viewer"]


class Registered(BaseModel):
    user: PublicUser


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_at: str
    refresh_token: str
    user: PublicUser


class NewApiToken(BaseModel):
    name: str
    scopes: list[str]
    expires_in_days: int | None = None


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


class Fingerprint(BaseModel):
    user_agent: str | None = None
    screen: str | None = None
    timezone: str | None = None
    language: str | None = None


class DeviceTokenRequest(BaseModel):
    fingerprint: Fingerprint | None = None


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


class UserQuery(BaseModel):
    q: str | None = None
    page: str | None = Field(None, description="1-100000, ASCII digits")
    per_page: str | None = Field(None, description=">= 1, ASCII digits (at most 200 returned)")


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


class AdminUserPage(BaseModel):
    items: list[AdminUser]
    page: int
    pages: int
    total: int


class AdminUserChange(BaseModel):
    role: Literal["admin", "uploader", "viewer"] | None = None
    disabled: bool | None = None
    upload_quota_bytes: int | None = Field(None, ge=0, description="0 = unlimited, null = the server default")


class ResetLink(BaseModel):
    expires_at: str
    url: str | None = None
    sent_to: str | None = None


class Jwks(Loose):
    keys: list[dict]


class Refreshed(BaseModel):
    """The new pair; from the refresh cookie, the tokens travel only in the new cookies."""
    token_type: str
    expires_at: str
    user: PublicUser
    access_token: str | None = None
    refresh_token: str | None = None
