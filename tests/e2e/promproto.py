"""A reader of the Prometheus protobuf exposition (length-delimited
io.prometheus.client.MetricFamily, metrics.proto of
prometheus/client_model), for the tests: just the fields sonde writes."""
import struct


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def zigzag(v):
    return (v >> 1) ^ -(v & 1)


def fields(buf):
    """(field, wire type, value) of a message's fields in order; LEN
    values are bytes, I64 values are the 8 bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire} at {i}")
        yield field, wire, value


def double(b):
    return struct.unpack("<d", b)[0]


def packed_varints(b):
    out, i = [], 0
    while i < len(b):
        v, i = varint(b, i)
        out.append(v)
    return out


def histogram(buf):
    h = {"buckets": [], "spans": [], "deltas": []}
    for f, wire, v in fields(buf):
        if f == 1:
            h["count"] = v
        elif f == 2:
            h["sum"] = double(v)
        elif f == 3:
            b = {}
            for bf, _, bv in fields(v):
                if bf == 1:
                    b["cumulative"] = bv
                elif bf == 2:
                    b["le"] = double(bv)
            h["buckets"].append(b)
        elif f == 5:
            h["schema"] = zigzag(v)
        elif f == 6:
            h["zero_threshold"] = double(v)
        elif f == 7:
            h["zero_count"] = v
        elif f == 12:
            span = {"offset": 0, "length": 0}
            for sf, _, sv in fields(v):
                span["offset" if sf == 1 else "length"] = (
                    zigzag(sv) if sf == 1 else sv)
            h["spans"].append(span)
        elif f == 13:
            vals = packed_varints(v) if wire == 2 else [v]
            h["deltas"] += [zigzag(x) for x in vals]
    return h


def metric(buf):
    m = {"labels": {}}
    for f, _, v in fields(buf):
        if f == 1:
            pair = {lf: lv.decode() for lf, _, lv in fields(v)}
            m["labels"][pair[1]] = pair.get(2, "")
        elif f in (2, 3):
            m["value"] = next(double(x) for xf, _, x in fields(v) if xf == 1)
        elif f == 7:
            m["histogram"] = histogram(v)
    return m


def families(body):
    """[{name, help, type, metrics}] of a delimited body."""
    out, i = [], 0
    while i < len(body):
        n, i = varint(body, i)
        fam = {"metrics": [], "type": 0}
        for f, _, v in fields(body[i:i + n]):
            if f == 1:
                fam["name"] = v.decode()
            elif f == 2:
                fam["help"] = v.decode()
            elif f == 3:
                fam["type"] = v
            elif f == 4:
                fam["metrics"].append(metric(v))
        out.append(fam)
        i += n
    return out


def native_buckets(h):
    """{index: count} of a native histogram's positive buckets."""
    out, index, count = {}, 0, 0
    deltas = iter(h["deltas"])
    for span in h["spans"]:
        index += span["offset"]
        for _ in range(span["length"]):
            count += next(deltas)
            out[index] = count
            index += 1
    return out
