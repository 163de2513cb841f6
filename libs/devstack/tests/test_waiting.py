"""The one way tests wait: poll a probe with a deadline, return what it found, or say what never came."""

import itertools
from collections.abc import Callable

import pytest

from devstack.testing import wait_for, wait_for_sync, wait_until

pytestmark = pytest.mark.unit


def counting_probe(ready_at: int, value: object) -> tuple[list[int], Callable[[], object]]:
    calls: list[int] = []

    def probe() -> object:
        calls.append(len(calls) + 1)
        return value if len(calls) >= ready_at else None

    return calls, probe


async def test_wait_for_returns_the_first_truthy_value_the_probe_yields() -> None:
    answers = iter([None, False, 0, [], "", ["span"], ["later"]])

    async def probe() -> list[str] | None:
        return next(answers)  # type: ignore[return-value]

    assert await wait_for(probe, every_s=0) == ["span"]
    assert next(answers) == ["later"]  # it stopped asking once it had an answer


async def test_wait_for_names_what_never_came_after_the_deadline() -> None:
    calls = itertools.count(1)

    async def never() -> None:
        next(calls)

    with pytest.raises(TimeoutError, match=r"waited 0\.05 s for the order to queue behind the lock"):
        await wait_for(never, within_s=0.05, what="the order to queue behind the lock")
    assert next(calls) > 2  # it kept asking until the deadline, and once more after it


async def test_what_can_say_what_was_last_seen() -> None:
    seen = 0

    async def spans() -> list[int] | None:
        nonlocal seen
        seen += 1
        return None

    with pytest.raises(TimeoutError) as timed_out:
        await wait_for(spans, within_s=0.02, what=lambda: f"3 spans; {seen} probes saw none")
    assert str(timed_out.value) == f"waited 0.02 s for 3 spans; {seen} probes saw none"


async def test_a_failure_inside_the_probe_fails_at_once_not_at_the_deadline() -> None:
    async def broken() -> int:
        raise AssertionError("status 500")

    with pytest.raises(AssertionError, match="status 500"):
        await wait_for(broken, within_s=60)


async def test_wait_until_is_wait_for_of_a_yes_or_no() -> None:
    answers = iter([False, False, True])

    async def predicate() -> bool:
        return next(answers)

    assert await wait_until(predicate) is None
    with pytest.raises(TimeoutError, match=r"waited 0\.01 s for the condition"):
        await wait_until(lambda: _false(), within_s=0.01)


async def _false() -> bool:
    return False


def test_wait_for_sync_is_the_same_for_code_that_cannot_await() -> None:
    calls, probe = counting_probe(ready_at=3, value=42)
    assert wait_for_sync(probe, every_s=0) == 42
    assert calls == [1, 2, 3]
    with pytest.raises(TimeoutError, match=r"waited 0\.01 s for the page to show it"):
        wait_for_sync(lambda: None, within_s=0.01, what="the page to show it")
