"""The patient list's filters and paging as query parameters, shared by the page, its fragment and
the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from dashboard import glance, tags

Need = Annotated[glance.Need, Query(description="attention or not_measuring")]
ProtocolKey = Annotated[str, Query(max_length=64, pattern=r"^[a-z0-9_]*$")]
TagFilter = Annotated[str, Query(max_length=tags.MAX_LENGTH)]
Page = Annotated[int, Query(ge=1, le=100_000, description="1-based page of the list")]
PerPage = Annotated[int, Query(ge=1, le=glance.MAX_PER_PAGE, description="patients a page")]
