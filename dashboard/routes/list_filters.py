"""The patient list's filters and paging as query parameters, shared by the page, its fragment and
the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from dashboard import glance, tags

Need = Annotated[glance.Need, Query(description="attention or not_measuring")]
ProtocolKey = Annotated[str, Query(max_length=64, pattern=r"^[a-z0-9_]*$")]
TagFilter = Annotated[str, Query(max_length=tags.MAX_LENGTH)]
Page = Annotated[int, Query(ge=1, le=100_000, description="1-based page of the list")]
PerPage = Annotated[int, Query(ge=1, le=glance.MAX_PER_PAGE, description="patients a page")]


def _list_query(
    need: Need = "",
    protocol: ProtocolKey = "",
    tag: TagFilter = "",
    page: Page = 1,
    per_page: PerPage = glance.PER_PAGE,
) -> glance.ListQuery:
    return glance.ListQuery(need, protocol, tag, page, per_page)


# The page, its fragment and the API take the same query parameters, read once here.
PatientQuery = Annotated[glance.ListQuery, Depends(_list_query)]
