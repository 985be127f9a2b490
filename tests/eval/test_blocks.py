from pipeline.blocks import describe


def test_user_blocks_name_final_dev_and_other_users() -> None:
    assert describe(0, 32) == "test users 0-31 (final block)"
    assert describe(100, 32) == "test users 100-131 (dev block)"
    assert describe(90, 20).endswith("(outside the declared final and dev blocks)")
    assert describe(0, 0) == "no test users"
