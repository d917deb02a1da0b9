"""Bearer tokens: the one module that handles JWTs (PyJWT).

Production validates tokens from the institution's identity provider against its JWKS: issuer,
audience, expiry, not-before and key id are checked, and only RS256 and ES256 are accepted, so
"none" and HMAC tricks (an HS256 token signed with the public key) fail before any key is used.
The identity provider's keys are trusted for a limited time (WAYMARK_OIDC_JWKS_LIFESPAN_SECONDS), so
a key it withdraws after a compromise stops verifying within minutes, without a restart.
Development mode (WAYMARK_ENV=development, and only then) signs with a local RSA key pair kept in
WAYMARK_DEV_KEY_DIR; ``waymark token`` mints such tokens and refuses to run in any other mode.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from waymark.models.pseudonyms import (
    SecretFileError,
    id_pseudonymiser,
    in_case,
    is_pseudonym,
    normalised_id,
    secret_in,
    without_decimal_zeros,
)
from waymark.models.roles import STAFF_ROLES, Role
from waymark.models.settings import Settings
from waymark.service.schemas import is_identifier

ALGORITHMS = ["RS256", "ES256"]
ROLES = tuple(Role)  # the one table: waymark.models.roles
DEV_KID = "waymark-dev-1"
_PRIVATE = "signing-key.pem"
log = logging.getLogger("waymark.service")


class AuthError(Exception):
    """The token is not acceptable; the message is safe to show (it never echoes the token)."""


class ConfigurationError(RuntimeError):
    """The service is not configured to authenticate safely; it refuses to start."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the verified token says."""

    sub: str
    role: str
    training_until: float | None  # information-security training attestation in the token, if any
    # The kinds of scope the caller's relationships are given on now, where their role takes several
    # (support staff: a school, named students); None: not looked up, every kind the role takes
    # (``access.narrowed``). A read then names only these, so each keeps its index.
    scopes: tuple[str, ...] | None = None
    # Every Waymark role the person holds, where the token or session says (the role mapping's claim
    # in a bearer token; a session's roles): the committee's approvals refuse a data scientist's.
    holds: tuple[str, ...] = ()


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The claim ``path`` names, or None.

    A top-level claim of that name first (a namespaced one such as ``https://example.edu/student_number``
    too), else a dotted path into nested claims (``realm_access.roles``).
    """
    if path in claims:
        return claims[path]
    found: Any = claims
    for part in path.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return found


class StudentIds:
    """From a student's sign-in to the id their records carry.

    The identity provider names a person by its own subject; Waymark's records name a student by the
    number the institution's exports write, or by its pseudonym when the imports pseudonymise. The
    claim WAYMARK_STUDENT_ID_CLAIM names holds the number; with WAYMARK_PSEUDONYM_SECRET_FILE set, it
    is put through the imports' secret, as ``waymark access import --secret-file`` does for staff
    relationships. Without this, a student in a pseudonymised deployment saw no indicator, and their
    consent, requests and erasure were recorded under an id no record carries.
    """

    def __init__(self, settings: Settings) -> None:
        self.claim = settings.student_id_claim
        self.case = settings.student_id_case
        if any(c.isalnum() for c in settings.student_id_remove):
            raise ConfigurationError(
                "WAYMARK_STUDENT_ID_REMOVE names separators to take out of a student number (- / . or a "
                "space), never letters or digits: each character is removed wherever it is, so one "
                "student's number could become another's"
            )
        self.removed = str.maketrans("", "", settings.student_id_remove)
        for old, new in settings.student_id_replace.items():
            if not old or any(c.isalnum() or c.isspace() for c in new) or any(c.isalnum() for c in old):
                raise ConfigurationError(
                    "WAYMARK_STUDENT_ID_REPLACE replaces separators by separators in a student number "
                    f'({{"/": "-"}}), never letters or digits, nor by a space (a number is read trimmed): '
                    f"{old!r} by {new!r} could make one student's number another's"
                )
        self.replaced = tuple(settings.student_id_replace.items())
        self.pad = settings.student_id_pad
        self.extract: re.Pattern[str] | None = None
        if settings.student_id_extract is not None:
            try:
                self.extract = re.compile(settings.student_id_extract)
            except re.error as exc:
                raise ConfigurationError(
                    f"WAYMARK_STUDENT_ID_EXTRACT is not a regular expression: {exc}"
                ) from exc
            if self.extract.groups < 1:
                raise ConfigurationError(
                    "WAYMARK_STUDENT_ID_EXTRACT needs a group, in brackets, around the student number"
                )
        self._pseudonym: Callable[[str], str] | None = None
        if settings.pseudonym_secret_file is not None:
            try:
                self._pseudonym = id_pseudonymiser(secret_in(Path(settings.pseudonym_secret_file)))
            except SecretFileError as exc:
                raise ConfigurationError(f"WAYMARK_PSEUDONYM_SECRET_FILE: {exc}") from exc

    def of(self, claims: dict[str, Any]) -> str | None:
        """The student's id, or None when the claim is missing or empty."""
        value = claim_at(claims, self.claim)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            return None
        value = self.written(value)
        if not value.strip() or not is_identifier(value.strip()):
            return None  # an id the records could not carry (too long, control characters) names nobody
        return self._pseudonym(value) if self._pseudonym is not None else normalised_id(value)

    @property
    def pseudonymised(self) -> bool:
        """Whether the records carry pseudonyms of the numbers (``WAYMARK_PSEUDONYM_SECRET_FILE``)."""
        return self._pseudonym is not None

    def named(self, value: str) -> str:
        """The id records carry for a student named by number or by pseudonym (as the DPO may type it)."""
        if self._pseudonym is not None and is_pseudonym(value):
            return value
        value = self.written(value)
        return normalised_id(value) if self._pseudonym is None else self._pseudonym(value)

    def written(self, value: str) -> str:
        """A number as the exports write it: WAYMARK_STUDENT_ID_EXTRACT's part, cased, less some characters.

        WAYMARK_STUDENT_ID_REMOVE names the characters: a Philippine university's 2022-00011-MN-3, which
        its learning platform and so the imports write 202200011MN3. A Spanish federation's
        ``urn:schac:personalUniqueID:es:DNI:...`` and an online university's upper-case UUIDs for the
        records' lower-case ones found no record. Then WAYMARK_STUDENT_ID_REPLACE's separators, and
        WAYMARK_STUDENT_ID_PAD's zeros, as a mapping's ``replace`` and ``pad`` write them
        (``convert.column_sql``; a test holds the two alike): a Pakistani university's staff typing
        BSCS/F22/015 for the records' BSCS-F22-015 found nobody.
        """
        found = self.extract.search(value) if self.extract is not None else None
        if found is not None and found.group(1):
            value = found.group(1)
        value = in_case(unicodedata.normalize("NFC", value.strip()), self.case).translate(self.removed)
        for old, new in self.replaced:
            value = value.replace(old, new)
        if self.pad is not None:  # a spreadsheet's 23000374.0 too: the ".0" goes first, as in a mapping
            value = without_decimal_zeros(value).rjust(self.pad, "0")
        return value

    def missing(self) -> str:
        """Why a student could not be named, in words for the refusal."""
        return f"the sign-in carries no student number in its '{self.claim}' claim (WAYMARK_STUDENT_ID_CLAIM)"


def _dev_key(settings: Settings) -> rsa.RSAPrivateKey:
    if not settings.development:
        raise ConfigurationError(
            "local signing keys exist only in development mode (WAYMARK_ENV=development)"
        )
    path = Path(settings.dev_key_dir) / _PRIVATE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.write_bytes(pem)
        path.chmod(0o600)
    loaded = _parsed_private_key(path.read_bytes())
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ConfigurationError(f"{path} does not hold an RSA private key")
    return loaded


@functools.lru_cache(maxsize=8)
def _parsed_private_key(pem: bytes) -> Any:
    """The key a PEM file holds, parsed once per content: parsing checks the RSA key, about 40 ms a time."""
    return serialization.load_pem_private_key(pem, password=None)


def mint(
    settings: Settings,
    role: str,
    *,
    sub: str,
    minutes: int = 60,
    training_days: int | None = 365,
    **extra: Any,
) -> str:
    """A development token for ``role``/``sub`` (refused outside development mode)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.dev_issuer,
        "aud": settings.dev_issuer,
        "sub": sub,
        "role": role,
        "iat": now,
        "nbf": now,
        "exp": now + 60 * minutes,
        "jti": uuid.uuid4().hex,
    }
    if training_days is not None and role in STAFF_ROLES:
        claims["infosec_training_until"] = now + 86_400 * training_days
    claims.update(extra)
    return jwt.encode(claims, _dev_key(settings), algorithm="RS256", headers={"kid": DEV_KID})


class IdentityProviderKeys:
    """The identity provider's signing keys by key id, fetched on demand and trusted for a limited time.

    Keys older than the lifespan are never used, even when the JWKS cannot be fetched: a key the
    provider withdrew must stop verifying. A fetch happens when the keys have expired or a token names
    an unknown key id, but at most once per cooldown (a flood of made-up key ids, or an unreachable
    provider, costs the provider one request per cooldown, not one per token). Each fetch times out.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        try:  # PyJWKClient does the fetching (http(s) only, no redirects); the caching is ours
            self._client = jwt.PyJWKClient(
                settings.oidc_jwks_url, cache_jwk_set=False, timeout=settings.jwks_timeout_seconds
            )
        except jwt.PyJWKClientError as exc:
            raise ConfigurationError(f"WAYMARK_OIDC_JWKS_URL: {exc}") from exc
        self._lifespan = settings.jwks_lifespan_seconds
        self._cooldown = settings.jwks_cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()  # one fetch at a time; the others wait for its result
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._failed_at: float | None = None

    def get(self, kid: str) -> Any:
        """The key for ``kid``, or AuthError when it is unknown or the keys cannot be had."""
        with self._lock:
            now = self._clock()
            if self._due(now, kid):
                self._fetch(now)
            if not self._fresh(now):
                raise AuthError("the identity provider's keys could not be fetched")
            key = self._keys.get(kid)
        if key is None:
            raise AuthError("token signed with an unknown key")
        return key

    def has(self, kid: str) -> bool:
        """Whether ``get(kid)`` would answer from keys already held, without fetching (never waits)."""
        if not self._lock.acquire(blocking=False):
            return False  # a fetch may be under way
        try:
            return not self._due(self._clock(), kid)
        finally:
            self._lock.release()

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self._lifespan

    def _due(self, now: float, kid: str) -> bool:
        fresh = self._fresh(now)
        if fresh and kid in self._keys:
            return False
        # expired keys are fetched again unless a fetch just failed; unknown kids wait out any recent fetch
        recent = (self._failed_at, self._fetched_at if fresh else None)
        return all(at is None or now - at >= self._cooldown for at in recent)

    def _fetch(self, now: float) -> None:
        try:
            found = self._client.get_signing_keys(refresh=True)
        except (jwt.PyJWTError, OSError, ValueError) as exc:  # unreachable, slow, or not a JWKS
            self._failed_at = now
            log.warning("the identity provider's JWKS could not be fetched: %s", type(exc).__name__)
            return
        self._keys = {key.key_id: key.key for key in found if key.key_id}
        self._fetched_at = now


class Verifier:
    """Checks bearer tokens against the configured keys."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        *,
        held: Callable[[dict[str, Any]], Iterable[str]] | None = None,
    ) -> None:
        self.students = StudentIds(settings)
        # the roles a token's claims grant through the institution's role mapping, beside the one it is for
        self._held = held
        if settings.development:
            self._issuer = self._audience = settings.dev_issuer
            public = _dev_key(settings).public_key()
            self._keys: dict[str, Any] | None = {DEV_KID: public}
            self._jwks: IdentityProviderKeys | None = None
        else:
            problems = settings.oidc_problems()
            if problems:
                raise ConfigurationError(
                    "outside development mode the service needs an identity provider: " + "; ".join(problems)
                )
            self._issuer, self._audience = settings.oidc_issuer, settings.oidc_audience
            self._keys = None
            self._jwks = IdentityProviderKeys(settings, clock)

    def _key(self, token: str) -> Any:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ALGORITHMS:
            raise AuthError("token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:  # a list or number here must not reach a dict lookup
            raise AuthError("token has no key id")
        if self._keys is not None:
            if kid not in self._keys:
                raise AuthError("token signed with an unknown key")
            return self._keys[kid]
        assert self._jwks is not None  # noqa: S101
        return self._jwks.get(kid)

    def verifies_offline(self, token: str) -> bool:
        """Whether ``verify(token)`` would do no network I/O: the keys it needs are held (or it fails early).

        The service's event loop verifies such a token itself; any other goes to a worker thread, where
        fetching the identity provider's keys may wait.
        """
        if self._jwks is None:
            return True
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return True  # refused before any key is looked up
        return not isinstance(kid, str) or not kid or self._jwks.has(kid)

    def verify(self, token: str) -> Principal:
        """The caller, or AuthError for any token that is not fully valid."""
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=30,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_nbf": True},
            )
        except AuthError:
            raise
        except jwt.PyJWTError as exc:
            raise AuthError(f"token rejected: {type(exc).__name__}") from exc
        role = claims.get("role")
        if role not in ROLES or not isinstance(claims["sub"], str) or not claims["sub"]:
            raise AuthError("token lacks a known role or a subject")
        who: str = claims["sub"]
        if role == Role.STUDENT:
            student = self.students.of(claims)
            if student is None:
                raise AuthError(f"a student's token must name the student: {self.students.missing()}")
            who = student
        until = claims.get("infosec_training_until")
        holds = tuple(sorted({str(r) for r in self._held(claims)} | {role})) if self._held else ()
        return Principal(who, role, float(until) if isinstance(until, int | float) else None, holds=holds)


MIN_SECRET_BYTES = 32


def read_secret(settings: Settings, *, path: Path | None, setting: str, dev_name: str, what: str) -> bytes:
    """A secret from the file ``setting`` names; in development, one made in the dev key folder.

    ``what`` says what the secret is for, in the refusal's words ("the access log needs a secret key
    kept outside the database").

    Raises
    ------
    ConfigurationError
        Outside development without the setting, when the file cannot be read, or when it holds fewer
        than ``MIN_SECRET_BYTES`` bytes.
    """
    if path is None:
        if not settings.development:
            raise ConfigurationError(
                f"{setting} is not set: {what} (e.g. `openssl rand -hex 32 > {dev_name}`, readable by the "
                "service only)"
            )
        path = Path(settings.dev_key_dir) / dev_name
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
    try:
        secret = Path(path).read_bytes().strip()
    except OSError as exc:
        raise ConfigurationError(f"{setting} names {path}, which is not a readable file ({exc})") from exc
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"the secret in {path} ({setting}) is shorter than {MIN_SECRET_BYTES} bytes")
    return secret
