"""One exception tree for followaudit.

Lower layers raise these with a ``hint`` that says what to do next; the CLI turns them into a
single line on stderr and exit code 1 in exactly one place (``followaudit.cli.main``).

    FollowauditError
     ├── InputError            a file or argument the user gave cannot be used
     │    ├── EmptyInputError
     │    ├── BinaryInputError
     │    ├── EncodingError
     │    ├── TruncatedJSONError
     │    ├── MissingColumnsError
     │    ├── UnknownFormatError
     │    └── BadRowError      one row is bad (raised only with --strict; otherwise a reject)
     ├── TooLittleEvidenceError  the followers carry too little to give a fake share
     ├── StoreError            the DuckDB workspace cannot be used
     │    └── SnapshotNotFoundError
     ├── ModelError            the shipped model is missing or does not match the code
     ├── CollectError          a live collection could not go on
     │    ├── AuthRequiredError
     │    ├── HiddenFollowersError
     │    ├── NotFoundError
     │    ├── RateLimitError
     │    └── PaginationError
     └── MissingDependencyError  an optional extra is not installed
"""

from __future__ import annotations


class FollowauditError(Exception):
    """Base class. ``message`` says what is wrong, ``hint`` how to fix it."""

    default_hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    def one_line(self) -> str:
        """The single line the CLI prints: what is wrong, then how to fix it."""
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message


class InputError(FollowauditError):
    pass


class EmptyInputError(InputError):
    default_hint = "check the path; the file must hold at least one follower record"


class BinaryInputError(InputError):
    default_hint = "give a CSV, JSON, JSONL or Parquet file (gzip is fine)"


class EncodingError(InputError):
    default_hint = "re-save the file as UTF-8, or pass --encoding (e.g. --encoding latin-1)"


class TruncatedJSONError(InputError):
    default_hint = "the file looks cut off; re-download or re-export it, or use JSONL so good lines are kept"


class MissingColumnsError(InputError):
    default_hint = "name the columns with --map FIELD=COLUMN (e.g. --map follower_id=user_id)"


class UnknownFormatError(InputError):
    default_hint = "pass --platform and --format to say what the file is"


class BadRowError(InputError):
    default_hint = "fix the row, or drop --strict to send bad rows to the rejects table"


class TooLittleEvidenceError(FollowauditError):
    """The audit withholds its fake share (``Report.withheld`` says why and how to get more)."""


class StoreError(FollowauditError):
    default_hint = "pass --db PATH to use another workspace file"


class SnapshotNotFoundError(StoreError):
    default_hint = "run `followaudit snapshots` to list what is stored"


class ModelError(FollowauditError):
    default_hint = "run `followaudit train` to rebuild the model, or use --method rules"


class CollectError(FollowauditError):
    pass


class AuthRequiredError(CollectError):
    default_hint = (
        "this instance requires an access token: set FOLLOWAUDIT_MASTODON_TOKEN with "
        "FOLLOWAUDIT_MASTODON_INSTANCE, or add it under [mastodon.tokens] in the config file"
    )


class HiddenFollowersError(CollectError):
    default_hint = "the account hides its follower list; only its owner can audit it"


class NotFoundError(CollectError):
    default_hint = "check the handle or URL"


class RateLimitError(CollectError):
    default_hint = "wait and run the same command again; collection resumes where it stopped"


class PaginationError(CollectError):
    default_hint = "the server repeated itself; run the same command again later to resume"


class MissingDependencyError(FollowauditError):
    pass
