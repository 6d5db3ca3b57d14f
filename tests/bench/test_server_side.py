from corral.bench.server_side import parse_server_timing


def test_server_timing_is_parsed_as_rfc_entries_and_junk_is_skipped() -> None:
    value = 'create;desc="warm pool";dur=2.113, db;dur=0.5,cache;desc=hit , bad entry;dur=1, x;dur=fast'
    assert parse_server_timing(value) == {"create": ("warm pool", 2.113), "db": (None, 0.5),
                                          "cache": ("hit", None), "x": (None, None)}
    assert parse_server_timing('resume;desc="full (freezer)";dur=3.0')["resume"] == ("full (freezer)", 3.0)
    assert parse_server_timing(None) == {} and parse_server_timing("") == {}
