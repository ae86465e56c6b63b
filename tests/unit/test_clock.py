import asyncio

from shoal.core.clock import FakeClock, format_iso_z, format_lambda_timestamp


def test_lambda_timestamp_format():
    assert format_lambda_timestamp(1_700_000_000.6379) == "2023-11-14T22:13:20.638+0000"
    assert format_iso_z(1_700_000_000.6379) == "2023-11-14T22:13:20.637Z"


def test_fake_clock_wakes_sleepers_only_when_advanced():
    async def scenario():
        clock = FakeClock()
        woke = []

        async def sleeper(n):
            await clock.sleep(n)
            woke.append(n)

        tasks = [asyncio.create_task(sleeper(n)) for n in (5, 1)]
        await asyncio.sleep(0)
        assert woke == []
        clock.advance(2)
        await asyncio.sleep(0)
        assert woke == [1]
        clock.advance(3)
        await asyncio.gather(*tasks)
        assert woke == [1, 5]
        assert clock.monotonic() == 5

    asyncio.run(scenario())
