"""Settings from the environment, read once (``get_settings`` is cached; tests clear it or pass their own)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from waymark.models.ids import unseen_in
from waymark.models.marks import MarkScale


class Settings(BaseSettings):
    """Waymark's configuration (PRODUCT §7); every field is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///waymark.db", validation_alias="WAYMARK_DATABASE_URL")
    mlflow_tracking_uri: str = Field("sqlite:///mlflow.db", validation_alias="MLFLOW_TRACKING_URI")
    mlflow_artifacts: str = Field(
        "mlartifacts",
        validation_alias="WAYMARK_MLFLOW_ARTIFACTS",
        description="Artifact folder for new experiments when tracking locally (ignored for a server).",
    )
    env: str = Field("production", validation_alias="WAYMARK_ENV")
    oidc_issuer: str = Field("", validation_alias="WAYMARK_OIDC_ISSUER")
    oidc_audience: str = Field("", validation_alias="WAYMARK_OIDC_AUDIENCE")
    oidc_jwks_url: str = Field("", validation_alias="WAYMARK_OIDC_JWKS_URL")
    jwks_lifespan_seconds: float = Field(
        300,
        gt=0,
        validation_alias="WAYMARK_OIDC_JWKS_LIFESPAN_SECONDS",
        description="How long fetched signing keys are trusted before the JWKS is fetched again.",
    )
    jwks_cooldown_seconds: float = Field(
        30,
        ge=0,
        validation_alias="WAYMARK_OIDC_JWKS_COOLDOWN_SECONDS",
        description="At most one JWKS fetch per this period for unknown key ids or after a failed fetch.",
    )
    jwks_timeout_seconds: float = Field(3, gt=0, validation_alias="WAYMARK_OIDC_JWKS_TIMEOUT_SECONDS")
    dev_key_dir: Path = Field(
        Path(".waymark-dev-keys"),
        validation_alias="WAYMARK_DEV_KEY_DIR",
        description="Development only: where the local signing key pair is kept.",
    )
    target: str = Field("not_completing", validation_alias="WAYMARK_TARGET")
    model_name: str = Field("waymark-not-completing", validation_alias="WAYMARK_MODEL_NAME")
    max_page_size: int = Field(100, validation_alias="WAYMARK_MAX_PAGE_SIZE")
    max_body_bytes: int = Field(16_384, validation_alias="WAYMARK_MAX_BODY_BYTES")
    rate_limit_per_minute: int = Field(600, gt=0, validation_alias="WAYMARK_RATE_LIMIT_PER_MINUTE")
    rate_limit_identities: int = Field(
        100_000,
        gt=0,
        validation_alias="WAYMARK_RATE_LIMIT_IDENTITIES",
        description="Most subjects and addresses the rate limiter tracks; the least recently seen go first.",
    )
    trusted_proxies: str = Field(
        "",
        validation_alias="WAYMARK_TRUSTED_PROXIES",
        description="Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For is trusted.",
    )
    cors_origins: str = Field("", validation_alias="WAYMARK_CORS_ORIGINS")
    retention_days: int = Field(
        730,
        validation_alias="WAYMARK_RETENTION_DAYS",
        description="Indicators, notes, consents and closed requests older than this go.",
    )
    access_log_retention_days: int = Field(
        2190,
        validation_alias="WAYMARK_ACCESS_LOG_RETENTION_DAYS",
        description="How long the access log is kept (a separate period: it is the record of who read what).",
    )
    restriction_notice_days: int = Field(
        7,
        ge=0,
        le=90,
        validation_alias="WAYMARK_RESTRICTION_NOTICE_DAYS",
        description="How long a student left out at their request stays out after the DPO decides "
        "their objection or correction, told that it ends and when (GDPR Art. 18(3): told before a "
        "restriction is lifted). 0 lifts it with the decision.",
    )
    timezone: str = Field(
        "UTC",
        validation_alias="WAYMARK_TIMEZONE",
        description="The institution's IANA time zone, in which a staff relationship's days begin and end.",
    )
    mark_scale: str = Field(
        "0-100",
        validation_alias="WAYMARK_MARK_SCALE",
        description="The scale marks are shown on: lowest-highest (0-20, 1-7), with reversed after it "
        "where the lowest is the best (1-5 reversed), or grades with the mark each is imported as "
        "(A=100, B=80, ..., F=0): as the imports put marks at 0 to 100, 100 the best, and as "
        "explanations say them to staff and students.",
    )
    audit_key_file: Path | None = Field(
        None,
        validation_alias="WAYMARK_AUDIT_KEY_FILE",
        description="Secret key of the access log's HMAC chain; never stored in the database.",
    )
    outreach_file: Path | None = Field(
        None,
        validation_alias="WAYMARK_OUTREACH_FILE",
        description="The institution's outreach lists (channels, exemptions); the packaged ones when unset.",
    )
    transparency_file: Path | None = Field(
        None,
        validation_alias="WAYMARK_TRANSPARENCY_FILE",
        description="The institution's wording of the transparency statement; the packaged one when unset.",
    )
    sensitive_terms_file: Path | None = Field(
        None,
        validation_alias="WAYMARK_SENSITIVE_TERMS_FILE",
        description="Words activity source and type names may not contain (CoP §4); packaged when unset.",
    )
    labelling_words_file: Path | None = Field(
        None,
        validation_alias="WAYMARK_LABELLING_WORDS_FILE",
        description="The institution's own labelling words (TOML list `words`), refused beside the packaged.",
    )
    oidc_client_id: str = Field(
        "",
        validation_alias="WAYMARK_OIDC_CLIENT_ID",
        description="The pages' client at the identity provider; sign-in is off while it is empty.",
    )
    oidc_client_secret: str = Field(
        "",
        validation_alias="WAYMARK_OIDC_CLIENT_SECRET",
        description="The client's secret (empty for a public client, which relies on PKCE alone).",
    )
    oidc_scopes: str = Field("openid profile", validation_alias="WAYMARK_OIDC_SCOPES")
    oidc_end_provider_session: bool = Field(
        True,
        validation_alias="WAYMARK_OIDC_END_PROVIDER_SESSION",
        description="Sign-out also ends the session at the identity provider when it offers an end-session "
        "endpoint, so the next person at a shared computer cannot sign in as the last one.",
    )
    oidc_role_mapping_file: Path | None = Field(
        None,
        validation_alias="WAYMARK_OIDC_ROLE_MAPPING_FILE",
        description="Which claim holds a person's roles and what each value means (packaged one when unset).",
    )
    student_id_claim: str = Field(
        "sub",
        validation_alias="WAYMARK_STUDENT_ID_CLAIM",
        description="The claim of a student's sign-in that holds their student number as the institution's "
        "exports write it (a top-level claim, or a dotted path into nested claims).",
    )
    student_id_extract: str | None = Field(
        None,
        validation_alias="WAYMARK_STUDENT_ID_EXTRACT",
        description="A regular expression whose first group is the student number within the claim's "
        "value (a federation's urn:schac:personalUniqueID:es:DNI:12345678Z); a value it does not match "
        "is used whole.",
    )
    student_id_case: Literal["upper", "lower", "turkish-upper", "turkish-lower"] | None = Field(
        None,
        validation_alias="WAYMARK_STUDENT_ID_CASE",
        description="The case the exports write student numbers in, as the mappings' `case` rule gives it: "
        "a sign-in writing 42654350e or an upper-case UUID for the records' 42654350E or lower-case one.",
    )
    student_id_remove: str = Field(
        "",
        validation_alias="WAYMARK_STUDENT_ID_REMOVE",
        description="Characters the imports take out of student numbers (a mapping's replace = "
        '{ "-" = "" }), taken out of a signed-in or typed number too: a sign-in giving 2022-00011-MN-3 '
        "where the records hold 202200011MN3 found no record.",
    )
    student_id_replace: dict[str, str] = Field(
        default_factory=dict,
        validation_alias="WAYMARK_STUDENT_ID_REPLACE",
        description="Separators the imports replace by others in student numbers (a mapping's replace = "
        '{ "/" = "-" }), as JSON ({"/": "-"}), replaced in a signed-in or typed number too, in the order '
        "given, after WAYMARK_STUDENT_ID_REMOVE: staff typing BSCS/F22/015 for the records' "
        "BSCS-F22-015 found nobody.",
    )
    student_id_pad: int | None = Field(
        None,
        ge=1,
        le=64,
        validation_alias="WAYMARK_STUDENT_ID_PAD",
        description="The length the imports pad student numbers to with zeros on the left (a mapping's "
        "pad = 10), padded so in a signed-in or typed number too, a trailing .0 taken off first: a "
        "sign-in of 23000374 for the records' 0023000374 found no record.",
    )
    pseudonym_secret_file: Path | None = Field(
        None,
        validation_alias="WAYMARK_PSEUDONYM_SECRET_FILE",
        description="The imports' pseudonymisation secret: a signed-in student's number is put through it to "
        "find their records, which the imports named by pseudonym (unset: numbers are used as they are).",
    )
    session_hours: float = Field(
        8.0, gt=0, validation_alias="WAYMARK_SESSION_HOURS", description="A page session's lifetime."
    )
    session_secret_file: Path | None = Field(
        None,
        validation_alias="WAYMARK_SESSION_SECRET_FILE",
        description="Signs the short-lived sign-in transaction cookie (development: made in the key folder).",
    )
    metrics_token_file: Path | None = Field(
        None,
        validation_alias="WAYMARK_METRICS_TOKEN_FILE",
        description="A token (at least 32 characters) a metrics scraper sends as a bearer token to read "
        "/metrics; outside development /metrics is not served without one.",
    )
    public_url: str = Field(
        "",
        validation_alias="WAYMARK_PUBLIC_URL",
        description="The address people use (https://waymark.example.ac.uk); the request's when empty.",
    )
    operator: str | None = Field(
        None,
        max_length=64,
        validation_alias="WAYMARK_OPERATOR",
        description="The staff id (as the identity provider names them) of the person running commands "
        "here: the access log names them, and `waymark train` and `waymark fairness audit` record them "
        "as holding the data scientist's role, so that they cannot approve the models they build. "
        "Unset: the machine's user@host, which no sign-in names.",
    )
    dev_sign_in: str = Field(
        "",
        validation_alias="WAYMARK_DEV_SIGN_IN",
        description="Development only: role=subject pairs the sign-in page offers as one-click identities.",
    )
    request_threads: int = Field(
        4,
        ge=1,
        validation_alias="WAYMARK_REQUEST_THREADS",
        description="Requests each service process works on at once (the rest wait their turn).",
    )
    champion_recheck_seconds: float = Field(
        60.0,
        validation_alias="WAYMARK_CHAMPION_RECHECK_SECONDS",
        description="How often the service re-reads the champion's decision (also on every review).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (such as Europe/London)") from exc
        return value

    @field_validator("operator")
    @classmethod
    def _a_staff_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if unseen_in(value) or value != value.strip():
            raise ValueError(
                f"{value!r}: a staff id holds no control character, invisible direction control or space at "
                "either end"
            )
        return value

    @field_validator("mark_scale")
    @classmethod
    def _a_scale(cls, value: str) -> str:
        MarkScale.parse(value)
        return value

    @model_validator(mode="after")
    def _grades_label_nobody(self) -> Settings:
        """A grade's name reaches every student's sentences: never a label ("Failing", "at risk")."""
        grades = MarkScale.parse(self.mark_scale).grades
        if grades:
            from waymark.models.vocabulary import labelling_words, load_words  # it reads these settings

            words = load_words(self.labelling_words_file)
            for name, _ in grades:
                found = labelling_words(name, words)
                if found:
                    raise ValueError(
                        f"WAYMARK_MARK_SCALE: the grade {name!r} says {found[0]!r}, which labels a student "
                        "in the sentences staff and students read (PRODUCT §2): name the grade otherwise"
                    )
        return self

    @property
    def marks(self) -> MarkScale:
        """The scale marks are shown on (``mark_scale``)."""
        return MarkScale.parse(self.mark_scale)

    @property
    def development(self) -> bool:
        """Development mode: local signing keys and ``waymark token`` are allowed."""
        return self.env == "development"

    @property
    def mode(self) -> str:
        """``development`` or ``production``, as ``/health`` reports it."""
        return "development" if self.development else "production"

    @property
    def dev_issuer(self) -> str:
        """Issuer and audience of development tokens."""
        return "waymark-development"

    def development_exposure(self, host: str) -> list[str]:
        """Why serving in development mode here could expose real data (empty when it cannot).

        Anyone holding the development key folder can mint a token for any role, so development mode
        belongs on this machine's loopback address with a throwaway SQLite database.
        """
        if not self.development:
            return []
        reasons = []
        if not _loopback(host):
            reasons.append(f"it would listen on {host}, which other machines can reach")
        if not self.database_url.startswith("sqlite"):
            reasons.append("its database is not a local SQLite file")
        return reasons

    def unset_stores(
        self, names: tuple[str, ...] = ("WAYMARK_DATABASE_URL", "MLFLOW_TRACKING_URI")
    ) -> list[str]:
        """The stores left to their defaults outside development (empty in development, or when both are set).

        Without ``WAYMARK_DATABASE_URL`` the service would start on a new SQLite file in its working
        directory, with an empty access log, and report itself healthy; without ``MLFLOW_TRACKING_URI``
        on a new model registry. A typing slip in a service's environment file must not do that.
        """
        if self.development:
            return []
        fields = {"WAYMARK_DATABASE_URL": "database_url", "MLFLOW_TRACKING_URI": "mlflow_tracking_uri"}
        return [f"{name} is not set" for name in names if fields[name] not in self.model_fields_set]

    def oidc_problems(self) -> list[str]:
        """What is missing for production authentication (empty when complete)."""
        names = {
            "WAYMARK_OIDC_ISSUER": self.oidc_issuer,
            "WAYMARK_OIDC_AUDIENCE": self.oidc_audience,
            "WAYMARK_OIDC_JWKS_URL": self.oidc_jwks_url,
        }
        return [f"{name} is not set" for name, value in names.items() if not value]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another host name: it may resolve to anything
        return False


@lru_cache
def get_settings() -> Settings:
    """The settings, read from the environment once."""
    return Settings()  # type: ignore[call-arg]  # values come from the environment
