"""EnvironmentPool with fake environments (fakes over mocks): reuse, replacement, reaping."""

import asyncio

from shoal.core.errors import TooManyRequestsException
from shoal.core.tasks import Supervisor
from shoal.environments.pool import EnvironmentPool, Limits, TokenBucket
from tests.function_configs import function_config


def config(revision="r1", name="f"):
    return function_config(runtime="python3.12", name=name, revision_id=revision)


class FakeEnvironment:
    def __init__(self, cfg):
        self.config = cfg
        self.id = f"env-{id(self)}"
        self.alive = False
        self.stale = False
        self.busy = False
        self.idle_since = 0.0
        self.shut = False
        self.provisioned = False
        self.init_ms = None

    async def start(self):
        self.alive = True
        self.init_ms = 1.0

    async def shutdown(self):
        self.alive = False
        self.shut = True


def run(coro):
    return asyncio.run(coro)


def make_pool(ttl=60.0, limits=None):
    made = []

    def factory(cfg, initialization_type="on-demand"):
        env = FakeEnvironment(cfg)
        env.provisioned = initialization_type == "provisioned-concurrency"
        made.append(env)
        return env

    sup = Supervisor()
    return EnvironmentPool(factory, sup, idle_ttl=ttl, limits=limits), made, sup


def test_warm_reuse_and_concurrency_creates_more():
    async def scenario():
        pool, _, sup = make_pool()
        a = await pool.acquire(config())
        b = await pool.acquire(config())  # a is busy: a second environment
        assert a is not b and pool.created == 2
        pool.release(a)
        assert await pool.acquire(config()) is a
        pool.release(a)
        pool.release(b)
        assert pool.idle_count() == 2
        await pool.close()
        await sup.close()

    run(scenario())


def test_changed_config_retires_old_environments():
    async def scenario():
        pool, _, sup = make_pool()
        old = await pool.acquire(config("r1"))
        busy = await pool.acquire(config("r1"))
        pool.release(old)
        pool.on_config_change(config("r2"), deleted=False)
        assert busy.stale
        await asyncio.sleep(0)
        assert old.shut  # idle one retired at once
        pool.release(busy)  # busy one retired when released
        await asyncio.sleep(0)
        assert busy.shut
        fresh = await pool.acquire(config("r2"))
        assert fresh not in (old, busy)
        await pool.close()
        await sup.close()

    run(scenario())


def test_dead_environment_is_not_reused():
    async def scenario():
        pool, _, sup = make_pool()
        env = await pool.acquire(config())
        env.alive = False  # crashed or timed out
        pool.release(env)
        assert pool.idle_count() == 0
        assert await pool.acquire(config()) is not env
        await pool.close()
        await sup.close()

    run(scenario())


def test_reap_uses_idle_time_not_sleep():
    async def scenario():
        pool, _, sup = make_pool(ttl=10)
        env = await pool.acquire(config())
        pool.release(env)
        idle_since = env.idle_since
        assert pool.reap(now=idle_since + 9) == 0
        assert pool.reap(now=idle_since + 10.5) == 1
        await asyncio.sleep(0)
        assert env.shut and pool.live == 0
        await sup.close()

    run(scenario())


def test_deleted_function_environments_retire():
    async def scenario():
        pool, _, sup = make_pool()
        env = await pool.acquire(config())
        pool.release(env)
        pool.on_config_change(config(), deleted=True)
        await asyncio.sleep(0)
        assert env.shut
        await sup.close()

    run(scenario())


def test_token_bucket_refills_continuously_and_caps():
    bucket = TokenBucket(capacity=2, rate=1.0, now=0.0)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert not bucket.take(0.5)
    assert bucket.take(1.0)
    assert not bucket.take(1.0)
    bucket.take(100.0)
    assert bucket.tokens <= 2  # unused capacity does not accumulate


def test_scaling_rate_throttles_new_environments_not_warm_ones():
    async def scenario():
        pool, _, sup = make_pool(limits=Limits(scale_per_10s=2))
        a = await pool.acquire(config())
        b = await pool.acquire(config())
        try:
            await pool.acquire(config())
            raise AssertionError("the third new environment within the burst should be throttled")
        except TooManyRequestsException as exc:
            assert exc.extra["Reason"] == "ConcurrentInvocationLimitExceeded"
            assert exc.headers["Retry-After"] == "1"
        pool.release(a)
        assert await pool.acquire(config()) is a  # reuse needs no new environment
        pool.release(a)
        pool.release(b)
        await pool.close()
        await sup.close()

    run(scenario())


def test_memory_budget_reclaims_idle_environments_then_throttles():
    async def scenario():
        pool, _, sup = make_pool(limits=Limits(memory_budget_mb=256))
        a = await pool.acquire(config(name="a"))
        b = await pool.acquire(config(name="b"))
        assert pool.reserved_mb == 256
        pool.release(a)  # idle: may be reclaimed for another function
        c = await pool.acquire(config(name="c"))
        await asyncio.sleep(0)
        assert a.shut and pool.reserved_mb == 256
        try:
            await pool.acquire(config(name="d"))  # b and c are busy: the host is full
            raise AssertionError("should throttle instead of overcommitting")
        except TooManyRequestsException:
            pass
        pool.release(b)
        pool.release(c)
        await pool.close()
        await sup.close()

    run(scenario())
