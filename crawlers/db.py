"""The crawler process's database handle: one engine per URL, shared by the store pipeline and recorder."""

from __future__ import annotations

from functools import cache

from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, make_session_factory


@cache
def session_factory(url: str) -> sessionmaker[Session]:
    return make_session_factory(make_engine(url))
