"""`make bench`: Brief's critical path measured against a sequential and an asyncio.gather
baseline, plus scale, cold starts, warm overhead, the caches and a 429 storm (issue 6).

A benchmark, not a test: it reports what it measures and never fails on a target.
"""
