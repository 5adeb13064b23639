"""The tests' own secrets: fixed, at least 32 bytes, so no test depends on a built-in default key."""

from __future__ import annotations

TEST_SECRET_KEY = "tests-only-session-signing-key-0123456789abcdef"
TEST_AUTHOR_HASH_KEY = "tests-only-author-hash-key-0123456789abcdef"
#: Both, as the environment variables a command reads them from.
TEST_SECRET_ENV = {"WEISU_SECRET_KEY": TEST_SECRET_KEY, "WEISU_AUTHOR_HASH_KEY": TEST_AUTHOR_HASH_KEY}
