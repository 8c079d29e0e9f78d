"""The local stack's moto server reads moto's module list once, and still finds S3 and SQS."""

from __future__ import annotations

import os

import moto
import moto.backends

from brief_local.motoserver import speed_up


def test_moto_lists_its_modules_once_and_the_list_is_the_same() -> None:
    path = os.path.dirname(moto.__file__)
    on_disk = sorted(
        name
        for name in os.listdir(path)
        if os.path.isdir(os.path.join(path, name)) and not name.startswith("__")
    )
    speed_up()
    first = moto.backends.list_of_moto_modules
    speed_up()  # a second stack in the same process changes nothing

    assert moto.backends.list_of_moto_modules is first
    assert list(first()) == on_disk
    assert {"s3", "sqs"} <= set(first())
