#!/usr/bin/python3
"""The command list of DESIGN.md §8 with Redis 7.0.15 semantics and exact error texts.

Every expectation here was first checked against Debian's redis-server 7.0.15: a test that
passes on Redis is the specification weftd must meet. Run:

    /usr/bin/python3 tests/integration/test_commands.py --server-kind weft|redis --server-bin PATH

Exact replies (error texts, RESP3 encodings) are read with harness.RespClient, which returns
error replies as RespError values; semantics are also exercised through redis-py and redis-cli,
the clients users actually run.
"""

import time

import redis

import harness
from harness import RespError, ServerTestCase, encode_command, wait_until

ERR_SYNTAX = RespError("ERR syntax error")
ERR_NOT_INTEGER = RespError("ERR value is not an integer or out of range")
ERR_OVERFLOW = RespError("ERR increment or decrement would overflow")
ERR_NOT_FLOAT = RespError("ERR value is not a valid float")
ERR_NAN_OR_INFINITY = RespError("ERR increment would produce NaN or Infinity")
ERR_STRING_TOO_BIG = RespError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
ERR_NO_SUCH_KEY = RespError("ERR no such key")
ERR_DB_RANGE = RespError("ERR DB index is out of range")
NOAUTH = RespError("NOAUTH Authentication required.")
WRONGPASS = RespError("WRONGPASS invalid username-password pair or user is disabled.")

MIB = 1024 * 1024
LLONG_MAX = 2**63 - 1
LLONG_MIN = -2**63


def arity_error(name):
    return RespError("ERR wrong number of arguments for '%s' command" % name)


def info_fields(text):
    """Parses an INFO reply into {section: {field: value}}; section names are lowercased."""
    if isinstance(text, bytes):
        text = text.decode()
    sections = {}
    current = None
    for line in text.split("\r\n"):
        if line.startswith("# "):
            current = sections.setdefault(line[2:].strip().lower(), {})
        elif line and current is not None:
            field, _, value = line.partition(":")
            current[field] = value
    return sections


def pairs_to_dict(flat):
    """A RESP2 flat [k1, v1, k2, v2, ...] list (CONFIG GET) as a dict."""
    return dict(zip(flat[0::2], flat[1::2]))


class CommandTestCase(ServerTestCase):
    """A fresh, empty keyspace for every test; `self.c` is a raw client, `self.r` redis-py."""

    def setUp(self):
        super().setUp()
        self.c = self.raw()
        self.assertEqual(self.c.call("FLUSHALL"), "OK")
        self.r = self.client()


class StringCommandsTest(CommandTestCase):

    def test_set_get_and_options_through_redis_py(self):
        r = self.r
        self.assertTrue(r.set("k", "v"))
        self.assertEqual(r.get("k"), b"v")
        self.assertIsNone(r.get("missing"))
        self.assertIsNone(r.set("k", "other", nx=True))
        self.assertEqual(r.get("k"), b"v")
        self.assertTrue(r.set("k", "v2", xx=True))
        self.assertIsNone(r.set("absent", "x", xx=True))
        self.assertEqual(r.exists("absent"), 0)
        self.assertTrue(r.set("new", "x", nx=True))
        self.assertEqual(r.set("k", "v3", get=True), b"v2")
        self.assertIsNone(r.set("fresh", "v", get=True))
        self.assertEqual(r.get("fresh"), b"v")

    def test_set_nx_xx_combined_with_get(self):
        c = self.c
        self.assertEqual(c.call("SET", "k", "v1"), "OK")
        # NX GET on an existing key: returns the old value and does not set.
        self.assertEqual(c.call("SET", "k", "v2", "NX", "GET"), b"v1")
        self.assertEqual(c.call("GET", "k"), b"v1")
        # XX GET on a missing key: nil, nothing created.
        self.assertIsNone(c.call("SET", "nokey", "v", "XX", "GET"))
        self.assertEqual(c.call("EXISTS", "nokey"), 0)
        self.assertEqual(c.call("SET", "k", "v3", "XX", "GET"), b"v1")
        self.assertEqual(c.call("GET", "k"), b"v3")

    def test_set_expire_options(self):
        c = self.c
        self.assertEqual(c.call("SET", "k", "v", "EX", "100"), "OK")
        self.assertIn(c.call("TTL", "k"), (99, 100))
        self.assertEqual(c.call("SET", "k", "v", "PX", "100000"), "OK")
        self.assertTrue(99000 < c.call("PTTL", "k") <= 100000)
        self.assertEqual(c.call("SET", "k", "v2", "KEEPTTL"), "OK")
        self.assertTrue(99000 < c.call("PTTL", "k") <= 100000)
        self.assertEqual(c.call("GET", "k"), b"v2")
        # A plain SET drops the TTL.
        self.assertEqual(c.call("SET", "k", "v3"), "OK")
        self.assertEqual(c.call("TTL", "k"), -1)
        # Options are case-insensitive.
        self.assertEqual(c.call("set", "k", "v", "ex", "50", "nx"), None)
        self.assertEqual(c.call("set", "k2", "v", "px", "50000", "nx"), "OK")
        self.assertTrue(c.call("PTTL", "k2") > 0)

    def test_set_px_expires_the_key(self):
        c = self.c
        self.assertEqual(c.call("SET", "k", "v", "PX", "50"), "OK")
        wait_until(lambda: c.call("GET", "k") is None, 5.0, "key with PX 50 to expire")
        self.assertEqual(c.call("EXISTS", "k"), 0)
        self.assertEqual(c.call("TTL", "k"), -2)

    def test_set_errors(self):
        c = self.c
        self.assertEqual(c.call("SET", "k", "v", "NX", "XX"), ERR_SYNTAX)
        self.assertEqual(c.call("SET", "k", "v", "EX", "10", "PX", "100"), ERR_SYNTAX)
        self.assertEqual(c.call("SET", "k", "v", "EX"), ERR_SYNTAX)
        self.assertEqual(c.call("SET", "k", "v", "KEEPTTL", "EX", "10"), ERR_SYNTAX)
        self.assertEqual(c.call("SET", "k", "v", "FOO"), ERR_SYNTAX)
        invalid_expire = RespError("ERR invalid expire time in 'set' command")
        self.assertEqual(c.call("SET", "k", "v", "EX", "0"), invalid_expire)
        self.assertEqual(c.call("SET", "k", "v", "EX", "-1"), invalid_expire)
        self.assertEqual(c.call("SET", "k", "v", "PX", "0"), invalid_expire)
        self.assertEqual(c.call("SET", "k", "v", "EX", str(LLONG_MAX)), invalid_expire)
        self.assertEqual(c.call("SET", "k", "v", "PX", str(LLONG_MAX)), invalid_expire)
        self.assertEqual(c.call("SET", "k", "v", "EX", "abc"), ERR_NOT_INTEGER)
        self.assertEqual(c.call("SET", "k"), arity_error("set"))
        # Nothing above created the key.
        self.assertEqual(c.call("EXISTS", "k"), 0)

    def test_setnx_getset_getdel(self):
        c = self.c
        self.assertEqual(c.call("SETNX", "k", "a"), 1)
        self.assertEqual(c.call("SETNX", "k", "b"), 0)
        self.assertEqual(c.call("GET", "k"), b"a")
        self.assertEqual(c.call("GETSET", "k", "c"), b"a")
        self.assertEqual(c.call("GET", "k"), b"c")
        self.assertIsNone(c.call("GETSET", "new", "x"))
        self.assertEqual(c.call("GET", "new"), b"x")
        c.call("SET", "t", "v", "EX", "100")
        self.assertEqual(c.call("GETSET", "t", "w"), b"v")
        self.assertEqual(c.call("TTL", "t"), -1, "GETSET clears the TTL")
        self.assertEqual(c.call("GETDEL", "k"), b"c")
        self.assertIsNone(c.call("GETDEL", "k"))
        self.assertEqual(c.call("EXISTS", "k"), 0)
        self.assertEqual(c.call("SETNX", "k"), arity_error("setnx"))
        self.assertEqual(c.call("GETDEL", "a", "b"), arity_error("getdel"))

    def test_mset_msetnx_mget(self):
        r, c = self.r, self.c
        self.assertTrue(r.mset({"a": "1", "b": "2"}))
        self.assertEqual(r.mget("a", "b", "missing"), [b"1", b"2", None])
        self.assertEqual(c.call("MSETNX", "a", "9", "c", "3"), 0)
        self.assertIsNone(c.call("GET", "c"), "MSETNX sets nothing when one key exists")
        self.assertEqual(c.call("GET", "a"), b"1")
        self.assertEqual(c.call("MSETNX", "c", "3", "d", "4"), 1)
        self.assertEqual(c.call("MGET", "c", "d"), [b"3", b"4"])
        # The last of duplicate keys wins.
        self.assertEqual(c.call("MSET", "x", "1", "x", "2"), "OK")
        self.assertEqual(c.call("GET", "x"), b"2")
        self.assertEqual(c.call("MSET", "a"), arity_error("mset"))
        self.assertEqual(c.call("MSET", "a", "1", "b"), arity_error("mset"))
        self.assertEqual(c.call("MSETNX", "a", "1", "b"), arity_error("msetnx"))
        self.assertEqual(c.call("MGET"), arity_error("mget"))

    def test_mset_many_keys(self):
        c = self.c
        args = []
        for i in range(1000):
            args += ["key:%d" % i, "value:%d" % i]
        self.assertEqual(c.call("MSET", *args), "OK")
        self.assertEqual(c.call("DBSIZE"), 1000)
        values = c.call("MGET", *["key:%d" % i for i in range(1000)])
        self.assertEqual(values, [b"value:%d" % i for i in range(1000)])

    def test_incr_family(self):
        c = self.c
        self.assertEqual(c.call("INCR", "n"), 1)
        self.assertEqual(c.call("INCRBY", "n", "41"), 42)
        self.assertEqual(c.call("DECR", "n"), 41)
        self.assertEqual(c.call("DECRBY", "n", "50"), -9)
        self.assertEqual(c.call("INCRBY", "n", "-1"), -10)
        self.assertEqual(c.call("GET", "n"), b"-10")
        self.assertEqual(self.r.incr("m", 5), 5)
        c.call("SET", "t", "10", "EX", "100")
        self.assertEqual(c.call("INCR", "t"), 11)
        self.assertTrue(c.call("TTL", "t") > 0, "INCR keeps the TTL")

    def test_incr_errors(self):
        c = self.c
        c.call("SET", "s", "abc")
        self.assertEqual(c.call("INCR", "s"), ERR_NOT_INTEGER)
        for not_canonical in (" 1", "1 ", "01", "+1", "1.0", "", "99999999999999999999"):
            c.call("SET", "s", not_canonical)
            self.assertEqual(c.call("INCR", "s"), ERR_NOT_INTEGER, repr(not_canonical))
        self.assertEqual(c.call("INCRBY", "x", "abc"), ERR_NOT_INTEGER)
        self.assertEqual(c.call("INCRBY", "x", str(LLONG_MAX + 1)), ERR_NOT_INTEGER)
        c.call("SET", "max", str(LLONG_MAX))
        self.assertEqual(c.call("INCR", "max"), ERR_OVERFLOW)
        self.assertEqual(c.call("INCRBY", "max", "1"), ERR_OVERFLOW)
        self.assertEqual(c.call("GET", "max"), str(LLONG_MAX).encode())
        c.call("SET", "min", str(LLONG_MIN))
        self.assertEqual(c.call("DECR", "min"), ERR_OVERFLOW)
        self.assertEqual(c.call("DECRBY", "min", "1"), ERR_OVERFLOW)
        # DECRBY cannot negate LLONG_MIN: its own message.
        self.assertEqual(c.call("DECRBY", "x", str(LLONG_MIN)),
                         RespError("ERR decrement would overflow"))
        self.assertEqual(c.call("INCR", "a", "b"), arity_error("incr"))
        self.assertEqual(c.call("INCRBY", "a"), arity_error("incrby"))

    def test_incrbyfloat(self):
        c = self.c
        self.assertEqual(c.call("INCRBYFLOAT", "f", "10.5"), b"10.5")
        self.assertEqual(c.call("INCRBYFLOAT", "f", "0.1"), b"10.6")
        self.assertEqual(c.call("INCRBYFLOAT", "g", "3.0e3"), b"3000")
        self.assertEqual(c.call("INCRBYFLOAT", "g", "-3000"), b"0")
        c.call("SET", "h", "1.5")
        self.assertEqual(c.call("INCRBYFLOAT", "h", "0.1"), b"1.6")
        c.call("SET", "i", "5")
        self.assertEqual(c.call("INCRBYFLOAT", "i", "1"), b"6")
        self.assertEqual(c.call("GET", "i"), b"6")
        self.assertEqual(self.r.incrbyfloat("j", 2.5), 2.5)

    def test_incrbyfloat_errors(self):
        c = self.c
        c.call("SET", "f", "1.5")
        self.assertEqual(c.call("INCRBYFLOAT", "f", "abc"), ERR_NOT_FLOAT)
        self.assertEqual(c.call("INCRBYFLOAT", "f", "nan"), ERR_NOT_FLOAT)
        self.assertEqual(c.call("INCRBYFLOAT", "f", "inf"), ERR_NAN_OR_INFINITY)
        self.assertEqual(c.call("INCRBYFLOAT", "f", "-inf"), ERR_NAN_OR_INFINITY)
        self.assertEqual(c.call("GET", "f"), b"1.5")
        c.call("SET", "s", "abc")
        self.assertEqual(c.call("INCRBYFLOAT", "s", "1"), ERR_NOT_FLOAT)
        self.assertEqual(c.call("INCRBYFLOAT", "s"), arity_error("incrbyfloat"))

    def test_append_strlen(self):
        c = self.c
        self.assertEqual(c.call("APPEND", "a", "hello"), 5)
        self.assertEqual(c.call("APPEND", "a", " world"), 11)
        self.assertEqual(c.call("GET", "a"), b"hello world")
        self.assertEqual(c.call("STRLEN", "a"), 11)
        self.assertEqual(c.call("STRLEN", "missing"), 0)
        self.assertEqual(c.call("APPEND", "a", ""), 11)
        c.call("SET", "n", "12")
        self.assertEqual(c.call("APPEND", "n", "3"), 3)
        self.assertEqual(c.call("INCR", "n"), 124)
        self.assertEqual(c.call("STRLEN", "n"), 3)

    def test_getrange(self):
        c = self.c
        c.call("SET", "a", "hello world")
        self.assertEqual(c.call("GETRANGE", "a", "0", "4"), b"hello")
        self.assertEqual(c.call("GETRANGE", "a", "-5", "-1"), b"world")
        self.assertEqual(c.call("GETRANGE", "a", "5", "2"), b"")
        self.assertEqual(c.call("GETRANGE", "a", "0", "1000"), b"hello world")
        self.assertEqual(c.call("GETRANGE", "a", "-1000", "2"), b"hel")
        self.assertEqual(c.call("GETRANGE", "missing", "0", "-1"), b"")
        self.assertEqual(c.call("GETRANGE", "a", "x", "2"), ERR_NOT_INTEGER)
        self.assertEqual(c.call("GETRANGE", "a", "0"), arity_error("getrange"))

    def test_setrange(self):
        c = self.c
        self.assertEqual(c.call("SETRANGE", "b", "5", "xy"), 7)
        self.assertEqual(c.call("GET", "b"), b"\x00\x00\x00\x00\x00xy")
        self.assertEqual(c.call("SETRANGE", "b", "0", "AB"), 7)
        self.assertEqual(c.call("GET", "b"), b"AB\x00\x00\x00xy")
        self.assertEqual(c.call("SETRANGE", "b", "6", "zzz"), 9)
        self.assertEqual(c.call("GET", "b"), b"AB\x00\x00\x00xzzz")
        # An empty value never creates a key, at any offset.
        self.assertEqual(c.call("SETRANGE", "c", "0", ""), 0)
        self.assertEqual(c.call("SETRANGE", "c", "10", ""), 0)
        self.assertEqual(c.call("EXISTS", "c"), 0)
        self.assertEqual(c.call("SETRANGE", "b", "100", ""), 9)

    def test_setrange_errors(self):
        c = self.c
        c.call("SET", "b", "x")
        self.assertEqual(c.call("SETRANGE", "b", "-1", "x"),
                         RespError("ERR offset is out of range"))
        # offset + length past proto-max-bulk-len (512 MB by default).
        self.assertEqual(c.call("SETRANGE", "b", str(512 * MIB), "x"), ERR_STRING_TOO_BIG)
        self.assertEqual(c.call("SETRANGE", "new", str(512 * MIB), "x"), ERR_STRING_TOO_BIG)
        self.assertEqual(c.call("EXISTS", "new"), 0)
        self.assertEqual(c.call("SETRANGE", "b", "abc", "x"), ERR_NOT_INTEGER)
        self.assertEqual(c.call("GET", "b"), b"x")

    def test_append_past_proto_max_bulk_len(self):
        c = self.c
        self.assertEqual(c.call("CONFIG", "SET", "proto-max-bulk-len", str(MIB)), "OK")
        try:
            half = b"x" * (MIB // 2 + 1)
            self.assertEqual(c.call("APPEND", "a", half), len(half))
            self.assertEqual(c.call("APPEND", "a", half), ERR_STRING_TOO_BIG)
            self.assertEqual(c.call("STRLEN", "a"), len(half))
            self.assertEqual(c.call("SETRANGE", "a", str(MIB), "x"), ERR_STRING_TOO_BIG)
        finally:
            self.assertEqual(c.call("CONFIG", "SET", "proto-max-bulk-len", str(512 * MIB)), "OK")


class KeyspaceCommandsTest(CommandTestCase):

    def test_del_unlink_exists_multiple(self):
        c = self.c
        c.call("MSET", "a", "1", "b", "2", "x", "3")
        self.assertEqual(c.call("EXISTS", "a", "a", "b", "missing"), 3, "duplicates count")
        self.assertEqual(c.call("DEL", "a", "missing", "a"), 1)
        self.assertEqual(c.call("UNLINK", "b", "x", "missing"), 2)
        self.assertEqual(c.call("EXISTS", "a", "b", "x"), 0)
        self.assertEqual(c.call("DBSIZE"), 0)
        self.assertEqual(self.r.delete("none"), 0)
        self.assertEqual(c.call("DEL"), arity_error("del"))
        self.assertEqual(c.call("UNLINK"), arity_error("unlink"))
        self.assertEqual(c.call("EXISTS"), arity_error("exists"))

    def test_keys_patterns(self):
        c = self.c
        keys = [b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello", b"h*llo", b"other"]
        for k in keys:
            c.call("SET", k, "1")

        def keys_matching(pattern):
            return set(c.call("KEYS", pattern))

        self.assertEqual(keys_matching("*"), set(keys))
        self.assertEqual(keys_matching("h?llo"), {b"hello", b"hallo", b"hxllo", b"h*llo"})
        self.assertEqual(keys_matching("h*llo"), set(keys) - {b"other"})
        self.assertEqual(keys_matching("h[ae]llo"), {b"hello", b"hallo"})
        self.assertEqual(keys_matching("h[^e]llo"), {b"hallo", b"hxllo", b"h*llo"})
        self.assertEqual(keys_matching("h[a-b]llo"), {b"hallo"})
        self.assertEqual(keys_matching("h\\*llo"), {b"h*llo"})
        self.assertEqual(keys_matching("nomatch*"), set())
        self.assertEqual(keys_matching("HELLO"), set(), "KEYS is case-sensitive")
        self.assertEqual(c.call("KEYS"), arity_error("keys"))

    def test_scan_iterates_every_key(self):
        c = self.c
        expected = set()
        for batch in range(10):
            args = []
            for i in range(batch * 100, batch * 100 + 100):
                args += ["user:%d" % i, "v"]
                expected.add(b"user:%d" % i)
            c.call("MSET", *args)
        c.call("MSET", "other:1", "v", "other:2", "v")

        def full_scan(*options):
            seen = set()
            cursor = b"0"
            for _ in range(100000):
                cursor, batch = c.call("SCAN", cursor, *options)
                seen.update(batch)
                if cursor == b"0":
                    return seen
            self.fail("SCAN did not return to cursor 0 in 100000 calls")

        self.assertEqual(full_scan(), expected | {b"other:1", b"other:2"})
        self.assertEqual(full_scan("COUNT", "7"), expected | {b"other:1", b"other:2"})
        self.assertEqual(full_scan("MATCH", "user:*", "COUNT", "13"), expected)
        self.assertEqual(full_scan("MATCH", "other:*"), {b"other:1", b"other:2"})
        self.assertEqual(full_scan("TYPE", "string", "COUNT", "50"),
                         expected | {b"other:1", b"other:2"})
        self.assertEqual(full_scan("TYPE", "list"), set())
        self.assertEqual(full_scan("MATCH", "user:1?", "TYPE", "STRING"),
                         {b"user:%d" % i for i in range(10, 20)})
        self.assertEqual({k for k in self.r.scan_iter(match="other:*", count=3)},
                         {b"other:1", b"other:2"})

    def test_scan_on_empty_and_errors(self):
        c = self.c
        self.assertEqual(c.call("SCAN", "0"), [b"0", []])
        self.assertEqual(c.call("SCAN", "abc"), RespError("ERR invalid cursor"))
        self.assertEqual(c.call("SCAN", "18446744073709551616"), RespError("ERR invalid cursor"))
        self.assertEqual(c.call("SCAN", "0", "COUNT", "0"), ERR_SYNTAX)
        self.assertEqual(c.call("SCAN", "0", "COUNT", "-1"), ERR_SYNTAX)
        self.assertEqual(c.call("SCAN", "0", "COUNT", "x"), ERR_NOT_INTEGER)
        self.assertEqual(c.call("SCAN", "0", "FOO"), ERR_SYNTAX)
        self.assertEqual(c.call("SCAN", "0", "MATCH"), ERR_SYNTAX)
        self.assertEqual(c.call("SCAN"), arity_error("scan"))

    def test_type(self):
        c = self.c
        c.call("SET", "a", "1")
        self.assertEqual(c.call("TYPE", "a"), "string")
        self.assertEqual(c.call("TYPE", "missing"), "none")
        self.assertEqual(c.call("TYPE"), arity_error("type"))

    def test_rename(self):
        c = self.c
        self.assertEqual(c.call("RENAME", "missing", "b"), ERR_NO_SUCH_KEY)
        self.assertEqual(c.call("RENAME", "missing", "missing"), ERR_NO_SUCH_KEY)
        c.call("SET", "a", "1")
        self.assertEqual(c.call("RENAME", "a", "a"), "OK")
        self.assertEqual(c.call("GET", "a"), b"1")
        self.assertEqual(c.call("RENAME", "a", "b"), "OK")
        self.assertEqual(c.call("EXISTS", "a"), 0)
        self.assertEqual(c.call("GET", "b"), b"1")
        # The TTL moves with the value; the target's old TTL is gone.
        c.call("SET", "t", "v", "EX", "100")
        c.call("SET", "old", "x", "EX", "5000")
        self.assertEqual(c.call("RENAME", "t", "old"), "OK")
        self.assertIn(c.call("TTL", "old"), (99, 100))
        self.assertEqual(c.call("GET", "old"), b"v")
        c.call("SET", "p", "v")
        c.call("SET", "q", "w", "EX", "100")
        self.assertEqual(c.call("RENAME", "p", "q"), "OK")
        self.assertEqual(c.call("TTL", "q"), -1)
        self.assertEqual(c.call("RENAME", "a"), arity_error("rename"))

    def test_dbsize_flushall_flushdb(self):
        c = self.c
        self.assertEqual(c.call("DBSIZE"), 0)
        c.call("MSET", "a", "1", "b", "2", "c", "3")
        self.assertEqual(c.call("DBSIZE"), 3)
        self.assertEqual(c.call("FLUSHDB"), "OK")
        self.assertEqual(c.call("DBSIZE"), 0)
        c.call("MSET", "a", "1", "b", "2")
        self.assertEqual(c.call("FLUSHALL", "ASYNC"), "OK")
        self.assertEqual(c.call("DBSIZE"), 0)
        self.assertIsNone(c.call("GET", "a"))
        c.call("SET", "a", "1")
        self.assertEqual(c.call("FLUSHALL", "SYNC"), "OK")
        self.assertEqual(c.call("FLUSHDB", "ASYNC"), "OK")
        self.assertEqual(c.call("FLUSHDB", "SYNC"), "OK")
        self.assertEqual(c.call("DBSIZE"), 0)
        self.assertEqual(c.call("FLUSHDB", "FOO"), ERR_SYNTAX)
        self.assertEqual(c.call("FLUSHALL", "a", "b"), ERR_SYNTAX)
        self.assertEqual(c.call("DBSIZE", "x"), arity_error("dbsize"))


class ExpireTest(CommandTestCase):

    def test_ttl_and_pttl_of_missing_and_persistent_keys(self):
        c = self.c
        self.assertEqual(c.call("TTL", "missing"), -2)
        self.assertEqual(c.call("PTTL", "missing"), -2)
        c.call("SET", "k", "v")
        self.assertEqual(c.call("TTL", "k"), -1)
        self.assertEqual(c.call("PTTL", "k"), -1)

    def test_expire_and_pexpire(self):
        c = self.c
        self.assertEqual(c.call("EXPIRE", "missing", "10"), 0)
        c.call("SET", "k", "v")
        self.assertEqual(c.call("EXPIRE", "k", "100"), 1)
        self.assertIn(c.call("TTL", "k"), (99, 100))
        self.assertEqual(c.call("PEXPIRE", "k", "200000"), 1)
        self.assertTrue(199000 < c.call("PTTL", "k") <= 200000)
        self.assertEqual(self.r.ttl("k") in (199, 200), True)

    def test_expire_nx_xx_gt_lt(self):
        c = self.c
        c.call("SET", "k", "v")
        self.assertEqual(c.call("EXPIRE", "k", "100", "XX"), 0, "XX: no TTL yet")
        self.assertEqual(c.call("EXPIRE", "k", "100", "GT"), 0, "GT: no TTL counts as infinite")
        self.assertEqual(c.call("TTL", "k"), -1)
        self.assertEqual(c.call("EXPIRE", "k", "100", "NX"), 1)
        self.assertEqual(c.call("EXPIRE", "k", "200", "NX"), 0)
        self.assertEqual(c.call("EXPIRE", "k", "50", "GT"), 0)
        self.assertEqual(c.call("EXPIRE", "k", "200", "GT"), 1)
        self.assertEqual(c.call("EXPIRE", "k", "300", "LT"), 0)
        self.assertEqual(c.call("EXPIRE", "k", "100", "LT"), 1)
        self.assertEqual(c.call("EXPIRE", "k", "150", "XX"), 1)
        self.assertIn(c.call("TTL", "k"), (149, 150))
        self.assertEqual(c.call("PEXPIRE", "k", "1000", "gt"), 0)
        self.assertEqual(c.call("PEXPIRE", "k", "1000000", "XX", "GT"), 1)
        self.assertTrue(c.call("PTTL", "k") > 150000)
        c.call("PERSIST", "k")
        self.assertEqual(c.call("EXPIRE", "k", "10", "LT"), 1, "LT: no TTL counts as infinite")
        self.assertIn(c.call("TTL", "k"), (9, 10))

    def test_expire_option_errors(self):
        c = self.c
        c.call("SET", "k", "v")
        both = RespError("ERR NX and XX, GT or LT options at the same time are not compatible")
        self.assertEqual(c.call("EXPIRE", "k", "100", "NX", "XX"), both)
        self.assertEqual(c.call("EXPIRE", "k", "100", "NX", "GT"), both)
        self.assertEqual(c.call("EXPIRE", "k", "100", "GT", "LT"),
                         RespError("ERR GT and LT options at the same time are not compatible"))
        self.assertEqual(c.call("EXPIRE", "k", "100", "FOO"),
                         RespError("ERR Unsupported option FOO"))
        self.assertEqual(c.call("EXPIRE", "k", "abc"), ERR_NOT_INTEGER)
        self.assertEqual(c.call("EXPIRE", "k", str(LLONG_MAX)),
                         RespError("ERR invalid expire time in 'expire' command"))
        self.assertEqual(c.call("PEXPIRE", "k", str(LLONG_MAX)),
                         RespError("ERR invalid expire time in 'pexpire' command"))
        self.assertEqual(c.call("EXPIRE", "k"), arity_error("expire"))
        self.assertEqual(c.call("TTL", "k"), -1)

    def test_nonpositive_expire_deletes_unless_a_condition_fails(self):
        c = self.c
        c.call("SET", "k", "v")
        self.assertEqual(c.call("EXPIRE", "k", "-1"), 1)
        self.assertEqual(c.call("EXISTS", "k"), 0)
        c.call("SET", "k", "v")
        self.assertEqual(c.call("PEXPIRE", "k", "0"), 1)
        self.assertEqual(c.call("EXISTS", "k"), 0)
        c.call("SET", "k", "v")
        self.assertEqual(c.call("EXPIRE", "k", "0", "XX"), 0)
        self.assertEqual(c.call("EXPIRE", "k", "-5", "GT"), 0)
        self.assertEqual(c.call("EXISTS", "k"), 1)

    def test_persist(self):
        c = self.c
        self.assertEqual(c.call("PERSIST", "missing"), 0)
        c.call("SET", "k", "v")
        self.assertEqual(c.call("PERSIST", "k"), 0)
        c.call("EXPIRE", "k", "100")
        self.assertEqual(c.call("PERSIST", "k"), 1)
        self.assertEqual(c.call("TTL", "k"), -1)
        self.assertEqual(c.call("PERSIST", "k"), 0)

    def test_expired_keys_disappear_everywhere(self):
        c = self.c
        c.call("SET", "a", "v", "PX", "30")
        c.call("SET", "b", "v")
        c.call("PEXPIRE", "b", "30")
        c.call("SET", "keep", "v")
        wait_until(lambda: c.call("DBSIZE") == 1, 10.0, "active expiry of two keys")
        self.assertEqual(c.call("KEYS", "*"), [b"keep"])
        self.assertEqual(c.call("EXISTS", "a", "b"), 0)
        self.assertEqual(c.call("TTL", "a"), -2)


class ConnectionCommandsTest(CommandTestCase):

    def test_ping_echo(self):
        c = self.c
        self.assertEqual(c.call("PING"), "PONG")
        self.assertEqual(c.call("PING", "hello"), b"hello")
        self.assertEqual(c.call("PING", "a", "b"), arity_error("ping"))
        self.assertEqual(c.call("ECHO", "hi"), b"hi")
        self.assertEqual(c.call("ECHO", b"\x00\xff"), b"\x00\xff")
        self.assertEqual(c.call("ECHO"), arity_error("echo"))
        self.assertEqual(c.call("ECHO", "a", "b"), arity_error("echo"))
        self.assertTrue(self.r.ping())
        self.assertEqual(self.r.echo("x"), b"x")

    def test_select(self):
        c = self.c
        self.assertEqual(c.call("SELECT", "0"), "OK")
        self.assertEqual(c.call("SELECT", "16"), ERR_DB_RANGE)
        self.assertEqual(c.call("SELECT", "-1"), ERR_DB_RANGE)
        self.assertEqual(c.call("SELECT", "abc"), ERR_NOT_INTEGER)
        self.assertEqual(c.call("SELECT"), arity_error("select"))
        c.call("SET", "k", "v")
        self.assertEqual(c.call("GET", "k"), b"v")

    def test_quit_replies_ok_and_closes(self):
        c = self.raw()
        c.send_command("QUIT")
        self.assertEqual(c.read_reply(), "OK")
        data, closed = harness.read_until_close(c.sock, 5.0)
        self.assertEqual((data, closed), (b"", True))

    def test_hello_3_replies_with_a_resp3_map(self):
        c = self.raw()
        c.keep_raw = True
        reply = c.call("HELLO", "3")
        self.assertTrue(bytes(c.raw_received).startswith(b"%7\r\n"), bytes(c.raw_received[:40]))
        self.assertEqual(set(reply), {b"server", b"version", b"proto", b"id", b"mode", b"role",
                                      b"modules"})
        self.assertEqual(reply[b"proto"], 3)
        self.assertEqual(reply[b"id"], c.call("CLIENT", "ID"))
        self.assertEqual(reply[b"mode"], b"standalone")
        self.assertEqual(reply[b"modules"], [])
        # RESP3 encodings on this connection.
        c.raw_received.clear()
        self.assertIsNone(c.call("GET", "missing"))
        self.assertEqual(bytes(c.raw_received), b"_\r\n")
        c.raw_received.clear()
        c.call("SET", "k", "v")
        c.raw_received.clear()
        self.assertEqual(c.call("MGET", "k", "missing"), [b"v", None])
        self.assertEqual(bytes(c.raw_received), b"*2\r\n$1\r\nv\r\n_\r\n")
        c.raw_received.clear()
        self.assertEqual(c.call("CONFIG", "GET", "maxclients"), {b"maxclients": b"10000"})
        self.assertTrue(bytes(c.raw_received).startswith(b"%1\r\n"))
        # Back to RESP2.
        c.raw_received.clear()
        reply = c.call("HELLO", "2")
        self.assertTrue(bytes(c.raw_received).startswith(b"*14\r\n"))
        self.assertEqual(dict(zip(reply[0::2], reply[1::2]))[b"proto"], 2)
        c.raw_received.clear()
        self.assertIsNone(c.call("GET", "missing"))
        self.assertEqual(bytes(c.raw_received), b"$-1\r\n")

    def test_hello_errors(self):
        c = self.c
        self.assertEqual(c.call("HELLO", "4"), RespError("NOPROTO unsupported protocol version"))
        self.assertEqual(c.call("HELLO", "1"), RespError("NOPROTO unsupported protocol version"))
        self.assertEqual(c.call("HELLO", "x"),
                         RespError("ERR Protocol version is not an integer or out of range"))
        # No argument: reports the current protocol without changing it.
        reply = c.call("HELLO")
        self.assertEqual(pairs_to_dict(reply)[b"proto"], 2)

    def test_auth_without_a_password_configured(self):
        self.assertEqual(
            self.c.call("AUTH", "x"),
            RespError("ERR AUTH <password> called without any password configured for the "
                      "default user. Are you sure your configuration is correct?"))


class AuthTest(ServerTestCase):
    requirepass = "s3cret pass"

    def test_commands_need_auth(self):
        c = self.raw()
        self.assertEqual(c.call("PING"), NOAUTH)
        self.assertEqual(c.call("GET", "k"), NOAUTH)
        self.assertEqual(c.call("SET", "k", "v"), NOAUTH)
        self.assertEqual(c.call("CLIENT", "ID"), NOAUTH)
        self.assertEqual(c.call("AUTH", "wrong"), WRONGPASS)
        self.assertEqual(c.call("GET", "k"), NOAUTH)
        self.assertEqual(c.call("AUTH", "s3cret pass"), "OK")
        self.assertEqual(c.call("PING"), "PONG")
        self.assertIsNone(c.call("GET", "k"))
        # A failed AUTH later does not log the client out.
        self.assertEqual(c.call("AUTH", "wrong"), WRONGPASS)
        self.assertEqual(c.call("PING"), "PONG")

    def test_auth_with_user_name(self):
        c = self.raw()
        self.assertEqual(c.call("AUTH", "default", "wrong"), WRONGPASS)
        self.assertEqual(c.call("AUTH", "nouser", "s3cret pass"), WRONGPASS)
        self.assertEqual(c.call("AUTH", "default", "s3cret pass"), "OK")
        self.assertEqual(c.call("PING"), "PONG")

    def test_auth_errors(self):
        c = self.raw()
        self.assertEqual(c.call("AUTH"), arity_error("auth"))
        self.assertEqual(c.call("AUTH", "a", "b", "c"), ERR_SYNTAX)

    def test_unknown_command_before_auth_is_reported_as_unknown(self):
        c = self.raw()
        self.assertEqual(c.call("FOO"),
                         RespError("ERR unknown command 'FOO', with args beginning with: "))

    def test_hello_needs_auth_or_carries_it(self):
        c = self.raw()
        hello_noauth = RespError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
            "the RESP protocol version at the same time")
        self.assertEqual(c.call("HELLO", "3"), hello_noauth)
        self.assertEqual(c.call("HELLO"), hello_noauth)
        self.assertEqual(c.call("HELLO", "3", "AUTH", "default", "wrong"), WRONGPASS)
        reply = c.call("HELLO", "3", "AUTH", "default", "s3cret pass")
        self.assertEqual(reply[b"proto"], 3)
        self.assertEqual(c.call("PING"), "PONG")

    def test_pipelined_auth_then_command(self):
        reply, closed = harness.raw_exchange(
            self.server.port,
            encode_command("AUTH", "wrong") + encode_command("PING")
            + encode_command("AUTH", "s3cret pass") + encode_command("PING")
            + encode_command("QUIT"))
        self.assertEqual(reply, b"-WRONGPASS invalid username-password pair or user is disabled."
                         b"\r\n-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n+OK\r\n")
        self.assertTrue(closed)

    def test_unauthenticated_clients_get_small_frame_limits(self):
        # Before AUTH, Redis refuses more than 10 arguments or bulks over 16 KB, then closes.
        reply, closed = harness.raw_exchange(self.server.port, b"*11\r\n")
        self.assertEqual(reply, b"-ERR Protocol error: unauthenticated multibulk length\r\n")
        self.assertTrue(closed)
        reply, closed = harness.raw_exchange(self.server.port, b"*1\r\n$16385\r\n")
        self.assertEqual(reply, b"-ERR Protocol error: unauthenticated bulk length\r\n")
        self.assertTrue(closed)
        # After AUTH the normal limits apply.
        c = self.raw()
        self.assertEqual(c.call("AUTH", "s3cret pass"), "OK")
        self.assertEqual(c.call("MSET", *(["k"] * 12)), "OK")
        self.assertEqual(c.call("SET", "big", b"x" * 20000), "OK")

    def test_quit_works_before_auth(self):
        reply, closed = harness.raw_exchange(self.server.port, encode_command("QUIT"))
        self.assertEqual((reply, closed), (b"+OK\r\n", True))

    def test_redis_py_and_redis_cli_authenticate(self):
        r = self.client()
        self.assertTrue(r.set("k", "v"))
        self.assertEqual(r.get("k"), b"v")
        bad = self.server.client(password="nope")
        self.addCleanup(bad.close)
        # redis-py 4.3.4 maps WRONGPASS to a plain ResponseError.
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            bad.ping()
        self.assertTrue(str(caught.exception).startswith("WRONGPASS"), str(caught.exception))
        out = self.server.redis_cli("GET", "k")
        self.assertEqual(out.stdout, b"v\n")


class ServerCommandsTest(CommandTestCase):

    def test_client_setname_getname(self):
        c = self.c
        self.assertIsNone(c.call("CLIENT", "GETNAME"))
        self.assertEqual(c.call("CLIENT", "SETNAME", "worker-1"), "OK")
        self.assertEqual(c.call("CLIENT", "GETNAME"), b"worker-1")
        self.assertEqual(
            c.call("CLIENT", "SETNAME", "my name"),
            RespError("ERR Client names cannot contain spaces, newlines or special characters."))
        self.assertEqual(c.call("CLIENT", "GETNAME"), b"worker-1")
        self.assertEqual(c.call("CLIENT", "SETNAME", ""), "OK")
        self.assertIsNone(c.call("CLIENT", "GETNAME"))
        self.assertEqual(c.call("CLIENT", "FOO"),
                         RespError("ERR unknown subcommand 'FOO'. Try CLIENT HELP."))

    def test_client_id_and_list(self):
        c = self.c
        other = self.raw()
        my_id = c.call("CLIENT", "ID")
        other_id = other.call("CLIENT", "ID")
        self.assertIsInstance(my_id, int)
        self.assertGreater(other_id, my_id, "ids increase with each connection")
        c.call("CLIENT", "SETNAME", "lister")
        listing = c.call("CLIENT", "LIST").decode()
        self.assertTrue(listing.endswith("\n"))
        lines = {}
        for line in listing.splitlines():
            fields = dict(f.split("=", 1) for f in line.split(" "))
            lines[int(fields["id"])] = fields
        self.assertIn(my_id, lines)
        self.assertIn(other_id, lines)
        mine = lines[my_id]
        self.assertEqual(mine["name"], "lister")
        host, port = c.sock.getsockname()
        self.assertEqual(mine["addr"], "%s:%d" % (host, port))
        self.assertEqual(mine["laddr"], "127.0.0.1:%d" % self.server.port)
        self.assertEqual(mine["cmd"], "client|list")
        for field in ("age", "idle", "flags", "db", "qbuf", "omem", "tot-mem", "resp"):
            self.assertIn(field, mine)
        only_other = c.call("CLIENT", "LIST", "ID", str(other_id)).decode()
        self.assertEqual(len(only_other.splitlines()), 1)
        self.assertIn("id=%d " % other_id, only_other)

    def test_client_kill(self):
        c = self.c
        victim = self.raw()
        victim_id = victim.call("CLIENT", "ID")
        self.assertEqual(c.call("CLIENT", "KILL", "ID", str(victim_id)), 1)
        self.assertEqual(harness.read_until_close(victim.sock, 5.0), (b"", True))
        self.assertEqual(c.call("CLIENT", "KILL", "ID", str(victim_id)), 0)
        # By address, new form (count) and old form (+OK or error).
        victim2 = self.raw()
        # A round trip first: a connection the server has not accepted yet is no client yet.
        self.assertEqual(victim2.call("PING"), "PONG")
        addr = "%s:%d" % victim2.sock.getsockname()
        self.assertEqual(c.call("CLIENT", "KILL", "ADDR", addr), 1)
        self.assertEqual(harness.read_until_close(victim2.sock, 5.0), (b"", True))
        victim3 = self.raw()
        self.assertEqual(victim3.call("PING"), "PONG")
        addr3 = "%s:%d" % victim3.sock.getsockname()
        self.assertEqual(c.call("CLIENT", "KILL", addr3), "OK")
        self.assertEqual(harness.read_until_close(victim3.sock, 5.0), (b"", True))
        self.assertEqual(c.call("CLIENT", "KILL", "127.0.0.1:1"), RespError("ERR No such client"))
        self.assertEqual(c.call("CLIENT", "KILL", "ADDR", "127.0.0.1:1"), 0)
        self.assertEqual(c.call("CLIENT", "KILL", "FOO", "bar"), ERR_SYNTAX)
        self.assertEqual(c.call("PING"), "PONG")

    def test_config_get_set(self):
        c = self.c
        self.assertEqual(c.call("CONFIG", "GET", "maxclients"), [b"maxclients", b"10000"])
        self.assertEqual(c.call("CONFIG", "GET", "nonexistent"), [])
        got = pairs_to_dict(c.call("CONFIG", "GET", "maxclients", "timeout"))
        self.assertEqual(got, {b"maxclients": b"10000", b"timeout": b"0"})
        got = pairs_to_dict(c.call("CONFIG", "GET", "proto-max-*"))
        self.assertEqual(got, {b"proto-max-bulk-len": b"536870912"})
        self.assertEqual(c.call("CONFIG", "SET", "hz", "20"), "OK")
        self.assertEqual(c.call("CONFIG", "GET", "hz"), [b"hz", b"20"])
        self.assertEqual(c.call("CONFIG", "SET", "hz", "10"), "OK")
        self.assertEqual(c.call("CONFIG", "SET", "timeout", "0"), "OK")
        self.assertEqual(c.call("CONFIG", "SET", "client-output-buffer-limit",
                                "normal 64mb 32mb 10"), "OK")
        limit = pairs_to_dict(c.call("CONFIG", "GET", "client-output-buffer-limit"))
        self.assertIn(b"normal 67108864 33554432 10", limit[b"client-output-buffer-limit"])
        self.assertEqual(c.call("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"),
                         "OK")
        self.assertEqual(
            c.call("CONFIG", "SET", "nonexistent", "1"),
            RespError("ERR Unknown option or number of arguments for CONFIG SET - 'nonexistent'"))
        self.assertEqual(
            c.call("CONFIG", "SET", "maxclients", "abc"),
            RespError("ERR CONFIG SET failed (possibly related to argument 'maxclients') - "
                      "argument couldn't be parsed into an integer"))
        self.assertEqual(c.call("CONFIG", "SET", "hz"), arity_error("config|set"))
        self.assertEqual(c.call("CONFIG", "GET"), arity_error("config|get"))
        self.assertEqual(c.call("CONFIG", "FOO"),
                         RespError("ERR unknown subcommand 'FOO'. Try CONFIG HELP."))
        self.assertEqual(self.r.config_get("maxclients"), {"maxclients": "10000"})

    def test_info_sections_and_fields(self):
        c = self.c
        c.call("MSET", "a", "1", "b", "2", "c", "3")
        c.call("EXPIRE", "a", "1000")
        info = info_fields(c.call("INFO"))
        for section in ("server", "clients", "memory", "stats", "replication", "keyspace"):
            self.assertIn(section, info)
        self.assertEqual(info["server"]["tcp_port"], str(self.server.port))
        self.assertEqual(info["server"]["process_id"], str(self.server.pid))
        self.assertGreaterEqual(int(info["server"]["uptime_in_seconds"]), 0)
        self.assertGreaterEqual(int(info["clients"]["connected_clients"]), 1)
        self.assertEqual(info["clients"]["maxclients"], "10000")
        self.assertGreater(int(info["memory"]["used_memory"]), 0)
        self.assertGreater(int(info["stats"]["total_commands_processed"]), 0)
        self.assertGreater(int(info["stats"]["total_connections_received"]), 0)
        self.assertTrue(info["keyspace"]["db0"].startswith("keys=3,expires=1,"),
                        info["keyspace"]["db0"])
        # One section by name, case-insensitive; an unknown section is empty.
        only_memory = info_fields(c.call("INFO", "MEMORY"))
        self.assertEqual(list(only_memory), ["memory"])
        self.assertIn("used_memory", only_memory["memory"])
        self.assertEqual(c.call("INFO", "nosuchsection"), b"")
        c.call("FLUSHALL")
        self.assertNotIn("db0", info_fields(c.call("INFO", "keyspace"))["keyspace"])
        self.assertEqual(self.r.info("keyspace"), {})

    def test_info_reflects_clients_memory_and_commands(self):
        c = self.c

        def field(section, name):
            return int(info_fields(c.call("INFO", section))[section][name])

        base_clients = field("clients", "connected_clients")
        extra = [self.raw() for _ in range(3)]
        for e in extra:
            self.assertEqual(e.call("PING"), "PONG")
        wait_until(lambda: field("clients", "connected_clients") == base_clients + 3, 5.0,
                   "connected_clients to count three more")
        for e in extra:
            e.close()
        wait_until(lambda: field("clients", "connected_clients") == base_clients, 5.0,
                   "connected_clients to drop back")
        before = field("stats", "total_commands_processed")
        for _ in range(10):
            c.call("PING")
        self.assertGreaterEqual(field("stats", "total_commands_processed"), before + 10)
        memory_before = field("memory", "used_memory")
        value = b"v" * 10000
        for batch in range(10):
            c.pipeline([("SET", "big:%d:%d" % (batch, i), value) for i in range(100)])
        self.assertGreater(field("memory", "used_memory") - memory_before, 10 * 1000 * 1000)

    def test_command_count_and_info(self):
        c = self.c
        count = c.call("COMMAND", "COUNT")
        self.assertIsInstance(count, int)
        self.assertGreaterEqual(count, len(REDIS_COMMAND_KEYS))
        names = sorted(REDIS_COMMAND_KEYS)
        replies = c.call("COMMAND", "INFO", *names)
        self.assertEqual(len(replies), len(names))
        for name, entry in zip(names, replies):
            self.assertIsNotNone(entry, name)
            self.assertEqual(entry[0], name.encode())
            self.assertEqual((entry[1], entry[3], entry[4], entry[5]), REDIS_COMMAND_KEYS[name],
                             "arity, first key, last key, step of %s" % name)
            self.assertIsInstance(entry[2], list)
        self.assertEqual(c.call("COMMAND", "INFO", "nosuch"), [None])
        self.assertEqual(c.call("COMMAND", "INFO", "GET")[0][0], b"get")


# COMMAND INFO of every DESIGN §8 command in Redis 7.0.15: (arity, first key, last key, step).
REDIS_COMMAND_KEYS = {
    "ping": (-1, 0, 0, 0), "echo": (2, 0, 0, 0), "hello": (-1, 0, 0, 0),
    "quit": (-1, 0, 0, 0), "select": (2, 0, 0, 0), "auth": (-2, 0, 0, 0),
    "client": (-2, 0, 0, 0), "command": (-1, 0, 0, 0), "info": (-1, 0, 0, 0),
    "config": (-2, 0, 0, 0), "dbsize": (1, 0, 0, 0), "flushall": (-1, 0, 0, 0),
    "flushdb": (-1, 0, 0, 0), "exists": (-2, 1, -1, 1), "del": (-2, 1, -1, 1),
    "unlink": (-2, 1, -1, 1), "get": (2, 1, 1, 1), "set": (-3, 1, 1, 1),
    "setnx": (3, 1, 1, 1), "getset": (3, 1, 1, 1), "getdel": (2, 1, 1, 1),
    "mget": (-2, 1, -1, 1), "mset": (-3, 1, -1, 2), "msetnx": (-3, 1, -1, 2),
    "incr": (2, 1, 1, 1), "incrby": (3, 1, 1, 1), "decr": (2, 1, 1, 1),
    "decrby": (3, 1, 1, 1), "incrbyfloat": (3, 1, 1, 1), "append": (3, 1, 1, 1),
    "strlen": (2, 1, 1, 1), "getrange": (4, 1, 1, 1), "setrange": (4, 1, 1, 1),
    "keys": (2, 0, 0, 0), "scan": (-2, 0, 0, 0), "type": (2, 1, 1, 1),
    "rename": (3, 1, 2, 1), "expire": (-3, 1, 1, 1), "pexpire": (-3, 1, 1, 1),
    "ttl": (2, 1, 1, 1), "pttl": (2, 1, 1, 1), "persist": (2, 1, 1, 1),
}


class ErrorRepliesTest(CommandTestCase):

    def test_unknown_command(self):
        c = self.c
        self.assertEqual(c.call("foo", "a", "b"),
                         RespError("ERR unknown command 'foo', with args beginning with: 'a' 'b' "))
        self.assertEqual(c.call("FOO"),
                         RespError("ERR unknown command 'FOO', with args beginning with: "))
        self.assertEqual(
            c.call("foo", "a", "b", "c", "d"),
            RespError("ERR unknown command 'foo', with args beginning with: 'a' 'b' 'c' 'd' "))
        # Each argument is cut to 128 bytes in the message.
        self.assertEqual(
            c.call("foo", "x" * 200),
            RespError("ERR unknown command 'foo', with args beginning with: '%s' " % ("x" * 128)))
        self.assertEqual(c.call("PING"), "PONG")

    def test_unknown_command_through_redis_py(self):
        with self.assertRaises(redis.exceptions.ResponseError) as caught:
            self.r.execute_command("foo", "a", "b")
        self.assertEqual(str(caught.exception),
                         "unknown command 'foo', with args beginning with: 'a' 'b' ")

    def test_wrong_arity_names_the_command_in_lower_case(self):
        c = self.c
        self.assertEqual(c.call("GET"), arity_error("get"))
        self.assertEqual(c.call("get", "a", "b"), arity_error("get"))
        self.assertEqual(c.call("GeT"), arity_error("get"))
        self.assertEqual(c.call("SETRANGE", "a", "1"), arity_error("setrange"))
        self.assertEqual(c.call("TTL"), arity_error("ttl"))
        self.assertEqual(c.call("PTTL", "a", "b"), arity_error("pttl"))
        self.assertEqual(c.call("PERSIST"), arity_error("persist"))
        self.assertEqual(c.call("STRLEN"), arity_error("strlen"))
        self.assertEqual(c.call("APPEND", "a"), arity_error("append"))
        self.assertEqual(c.call("GETSET", "a"), arity_error("getset"))
        self.assertEqual(c.call("DECR"), arity_error("decr"))
        self.assertEqual(c.call("DECRBY", "a"), arity_error("decrby"))
        self.assertEqual(c.call("PEXPIRE", "a"), arity_error("pexpire"))
        self.assertEqual(c.call("PING"), "PONG")

    def test_commands_are_case_insensitive(self):
        c = self.c
        self.assertEqual(c.call("sEt", "k", "v"), "OK")
        self.assertEqual(c.call("get", "k"), b"v")
        self.assertEqual(c.call("GET", "K"), None, "keys are case-sensitive")


class BinarySafetyTest(CommandTestCase):

    def test_nul_bytes_in_keys_and_values(self):
        c = self.c
        key = b"\x00key\x00with\x00nuls\x00"
        value = bytes(range(256)) * 4
        self.assertEqual(c.call("SET", key, value), "OK")
        self.assertEqual(c.call("GET", key), value)
        self.assertEqual(c.call("STRLEN", key), 1024)
        self.assertEqual(c.call("GET", b"\x00key"), None, "the key is not cut at its first NUL")
        self.assertEqual(c.call("KEYS", "*"), [key])
        self.assertEqual(c.call("KEYS", b"\x00key*"), [key])
        self.assertEqual(c.call("APPEND", key, b"\x00\r\n"), 1027)
        self.assertEqual(c.call("GETRANGE", key, "-3", "-1"), b"\x00\r\n")
        self.assertEqual(c.call("RENAME", key, b"\r\n"), "OK")
        self.assertEqual(c.call("GET", b"\r\n"), value + b"\x00\r\n")
        self.r.set(b"\xff\xfe", b"\x00")
        self.assertEqual(self.r.get(b"\xff\xfe"), b"\x00")

    def test_empty_key_and_empty_value(self):
        c = self.c
        self.assertEqual(c.call("SET", "", "empty key"), "OK")
        self.assertEqual(c.call("GET", ""), b"empty key")
        self.assertEqual(c.call("EXISTS", ""), 1)
        self.assertEqual(c.call("TYPE", ""), "string")
        self.assertEqual(c.call("KEYS", "*"), [b""])
        self.assertEqual(c.call("SET", "e", ""), "OK")
        self.assertEqual(c.call("GET", "e"), b"")
        self.assertEqual(c.call("STRLEN", "e"), 0)
        self.assertEqual(c.call("EXISTS", "e"), 1)
        self.assertEqual(c.call("APPEND", "", "!"), 10)
        self.assertEqual(c.call("DEL", ""), 1)
        self.assertEqual(c.call("EXISTS", ""), 0)

    def test_16_mib_value_round_trip(self):
        c = self.c
        value = bytes((i * 131 + 7) & 0xFF for i in range(256)) * (16 * MIB // 256)
        self.assertEqual(len(value), 16 * MIB)
        self.assertEqual(c.call("SET", "big", value), "OK")
        self.assertEqual(c.call("STRLEN", "big"), 16 * MIB)
        self.assertEqual(c.call("GET", "big"), value)
        self.assertEqual(c.call("GETRANGE", "big", str(8 * MIB), str(8 * MIB + 9)),
                         value[8 * MIB:8 * MIB + 10])
        self.assertEqual(self.r.get("big"), value)
        self.assertEqual(c.call("APPEND", "big", "tail"), 16 * MIB + 4)
        self.assertEqual(c.call("GETRANGE", "big", "-6", "-1"), value[-2:] + b"tail")


class PipelineTest(CommandTestCase):

    def test_10k_pipelined_commands_answer_in_order(self):
        c = self.c
        commands = []
        for i in range(10000):
            if i % 3 == 0:
                commands.append(("INCR", "counter"))
            elif i % 3 == 1:
                commands.append(("SET", "k:%d" % i, "v:%d" % i))
            else:
                commands.append(("GET", "k:%d" % (i - 1)))
        deadline = time.monotonic() + 60
        replies = c.pipeline(commands)
        self.assertLess(time.monotonic(), deadline)
        expected_counter = 0
        for i, reply in enumerate(replies):
            if i % 3 == 0:
                expected_counter += 1
                self.assertEqual(reply, expected_counter, "reply %d" % i)
            elif i % 3 == 1:
                self.assertEqual(reply, "OK", "reply %d" % i)
            else:
                self.assertEqual(reply, b"v:%d" % (i - 1), "reply %d" % i)

    def test_redis_py_pipeline_without_transaction(self):
        pipe = self.r.pipeline(transaction=False)
        for i in range(10000):
            pipe.set("p:%d" % i, i)
        for i in range(10000):
            pipe.get("p:%d" % i)
        results = pipe.execute()
        self.assertEqual(results[:10000], [True] * 10000)
        self.assertEqual(results[10000:], [b"%d" % i for i in range(10000)])
        self.assertEqual(self.r.dbsize(), 10000)

    def test_pipelined_inline_commands(self):
        c = self.c
        c.send(b"SET a 1\r\nINCR a\nGET a\r\nSET \"b c\" 'd e'\r\nGET \"b c\"\r\n")
        self.assertEqual([c.read_reply() for _ in range(5)], ["OK", 2, b"2", "OK", b"d e"])

    def test_replies_arrive_when_commands_trickle_in_byte_by_byte(self):
        c = self.c
        data = encode_command("SET", "slow", "value") + encode_command("GET", "slow")
        for i in range(len(data)):
            c.send(data[i:i + 1])
        self.assertEqual(c.read_reply(), "OK")
        self.assertEqual(c.read_reply(), b"value")


class RedisCliTest(CommandTestCase):
    """redis-cli as users run it (stdout not a terminal: raw output)."""

    def cli(self, *args, stdin=None):
        out = self.server.redis_cli(*args, stdin=stdin)
        self.assertEqual(out.stderr, b"", out)
        return out.stdout

    def test_basic_commands(self):
        self.assertEqual(self.cli("SET", "foo", "bar"), b"OK\n")
        self.assertEqual(self.cli("GET", "foo"), b"bar\n")
        self.assertEqual(self.cli("GET", "missing"), b"\n")
        self.assertEqual(self.cli("INCR", "n"), b"1\n")
        self.assertEqual(self.cli("MGET", "foo", "missing", "n"), b"bar\n\n1\n")
        self.assertEqual(self.cli("DBSIZE"), b"2\n")
        self.assertEqual(self.cli("--no-raw", "GET", "foo"), b'"bar"\n')
        self.assertEqual(self.cli("--no-raw", "TTL", "foo"), b"(integer) -1\n")

    def test_errors(self):
        self.assertEqual(self.cli("foo", "a", "b"),
                         b"ERR unknown command 'foo', with args beginning with: 'a' 'b' \n\n")
        self.assertEqual(self.cli("--no-raw", "GET"),
                         b"(error) ERR wrong number of arguments for 'get' command\n")

    def test_commands_from_stdin_and_pipe_mode(self):
        self.assertEqual(self.cli(stdin=b"SET x 1\nINCR x\nGET x\n"), b"OK\n2\n2\n")
        stream = b"".join(encode_command("SET", "pipe:%d" % i, "v") for i in range(1000))
        out = self.cli("--pipe", stdin=stream)
        self.assertIn(b"errors: 0, replies: 1000", out)
        self.assertEqual(self.cli("DBSIZE"), b"1001\n")

    def test_hello_3_through_redis_cli(self):
        out = self.cli("-3", "HELLO", "3")
        self.assertIn(b"\nproto 3\n", out)


if __name__ == "__main__":
    harness.main()
