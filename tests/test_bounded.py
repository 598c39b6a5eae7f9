"""The tests' own loops end: a looping or endless nextLink and a condition that never holds fail with a message."""

import pytest

from tests.bounded import next_links, wait_until


def test_links_that_loop_back_fail_at_once() -> None:
    pages = {"/a": {"value": [1], "@odata.nextLink": "/b"}, "/b": {"value": [2], "@odata.nextLink": "/a"}}
    with pytest.raises(AssertionError, match="went back to a page already read: /a"):
        list(next_links(pages.__getitem__, "/a"))


def test_links_that_never_end_fail_at_the_page_bound() -> None:
    def endless(url: str) -> dict:
        return {"value": [url], "@odata.nextLink": f"{url}x"}

    with pytest.raises(AssertionError, match="still led on after 5 pages"):
        list(next_links(endless, "/p", max_pages=5))


def test_links_are_followed_to_the_last_page() -> None:
    pages = {"/a": {"value": [1], "@odata.nextLink": "/b"}, "/b": {"value": [2]}}
    assert [page["value"] for page in next_links(pages.__getitem__, "/a")] == [[1], [2]]


def test_a_wait_that_never_comes_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"gave up after 0.2 s waiting for the moon"):
        wait_until(lambda: False, timeout=0.2, what="the moon")
