"""While a local stack runs, every botocore session of the process reads the service models
through one loader: an emulated container's clients do not parse them again."""

from __future__ import annotations

from typing import Any

import aioboto3
import botocore.session

from brief_local import service_models


def _loader(session: Any) -> Any:
    return session.get_component("data_loader")


def _sharing() -> bool:
    return _loader(botocore.session.Session()) is _loader(botocore.session.Session())


# A stack another test left running (the e2e session's) shares too: each test compares with
# what it found, so "not shared" is checked whenever no other stack runs (`make unit`).


def test_sessions_share_one_loader_only_while_shared() -> None:
    before = _sharing()
    with service_models.shared():
        first, second = botocore.session.Session(), botocore.session.Session()
        assert _loader(first) is _loader(second)
    assert _sharing() is before
    if not before:
        assert _loader(botocore.session.Session()) is not _loader(first)


def test_models_are_parsed_once_for_every_session() -> None:
    with service_models.shared():
        first = _loader(botocore.session.Session())
        model = first.load_service_model("sqs", "service-2")
        again = _loader(botocore.session.Session())
        assert again.load_service_model("sqs", "service-2") is model


def test_boto3_sessions_do_not_grow_the_shared_search_path() -> None:
    with service_models.shared():
        sessions = [aioboto3.Session() for _ in range(3)]
        paths = _loader(sessions[0]._session).search_paths

        assert len(paths) == len(set(paths))
        assert any(path.endswith("boto3/data") for path in paths)


def test_a_stack_stopping_leaves_another_one_sharing() -> None:
    before = _sharing()
    with service_models.shared():
        with service_models.shared():
            pass
        assert _sharing()
    assert _sharing() is before
