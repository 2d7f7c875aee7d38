"Real-data loaders: the shared real files, malformed CSVs, and `fetch_fred` against a loopback HTTP server."
import http.server, socket, threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from credit_rl.market.data import (DataError, FetchError, LoadReport, fetch_fred, load_csv, load_fred_csv, load_ohlcv,
                            load_shared_market, shared_data_dir, split_jump_check)

DATA = shared_data_dir()
needs_data = pytest.mark.skipif(DATA is None or not Path(DATA).is_dir(), reason="shared data folder absent")
WEEKEND = "weekend rows (ICE month-end convention or calendar-day series)"


# ---------------------------------------------------------------- real files
@needs_data
@pytest.mark.parametrize("fname, weekend_rows, missing", [("BAMLC0A0CM.csv", 101, 94), ("BAMLH0A0HYM2.csv", 101, 93),
                                                          ("BAMLC0A1CAAA.csv", 100, 94), ("BAMLC0A4CBBB.csv", 100, 94)])
def test_real_ice_oas(fname, weekend_rows, missing):
    frame, rep = load_fred_csv(DATA/fname, unit="bp")
    col = frame.columns[0]
    assert rep.rows_read == len(pd.read_csv(DATA/fname))
    assert rep.dropped == {WEEKEND: weekend_rows}
    assert rep.missing_left == {col: missing} and rep.repaired == {}
    assert (frame.index.day_of_week < 5).all() and frame.index.is_unique and frame.index.is_monotonic_increasing
    assert 15 < frame[col].min() and frame[col].max() < 2200  # bp, not percent
    assert rep.longest_gap_bdays[col][0] <= 3


@needs_data
def test_real_hy_values_in_bp():
    frame, _ = load_fred_csv(DATA/"BAMLH0A0HYM2.csv", unit="bp", name="hy_oas_bp")
    assert frame.loc["2020-02-19", "hy_oas_bp"] == pytest.approx(357.0)
    assert frame.loc["2020-03-23", "hy_oas_bp"] == pytest.approx(1087.0)
    assert frame["hy_oas_bp"].max() == pytest.approx(2182.0)


@needs_data
def test_real_vix_and_fed_funds():
    vix, rv = load_fred_csv(DATA/"VIXCLS.csv", unit="index", name="vix")
    assert rv.dropped == {} and rv.missing_left == {"vix": 301}
    assert vix.loc["2020-03-16", "vix"] == pytest.approx(82.69)
    dff, rd = load_fred_csv(DATA/"DFF.csv", unit="percent")
    assert rd.dropped == {WEEKEND: 3364} and rd.rows_kept == 11773 - 3364


@needs_data
def test_real_jnk_split_and_total_return():
    jnk, rep = load_ohlcv(DATA/"JNK.csv")
    check = split_jump_check(jnk)
    assert list(check.index.strftime("%Y-%m-%d")) == ["2019-05-06"] and check.explained.all()
    assert jnk.loc["2019-05-06", "close"] / jnk.loc["2019-05-03", "close"] == pytest.approx(3.0, rel=0.01)
    assert abs(jnk.loc["2019-05-06", "total_return"]) < 0.01
    # adjusted-close return == (close + dividend) * split / previous close - 1, to 1e-5
    implied = (jnk.close + jnk.dividend) * jnk.split / jnk.close.shift() - 1
    assert np.nanmax(np.abs(implied - jnk.total_return)) < 1e-5


@needs_data
def test_real_jnk_without_split_column_is_rejected(tmp_path):
    raw = pd.read_csv(DATA/"JNK.csv")
    raw["Split"] = 1.0
    raw.to_csv(tmp_path/"JNK_nosplit.csv", index=False)
    with pytest.raises(DataError, match=r"JNK_nosplit.csv: column 'Close', row 2874 \(file line 2875, date 2019-05-06\)"):
        load_ohlcv(tmp_path/"JNK_nosplit.csv")


@needs_data
@pytest.mark.parametrize("ticker", ["LQD", "HYG", "IEF", "SPY"])
def test_real_etfs_load(ticker):
    frame, rep = load_ohlcv(DATA/f"{ticker}.csv", prefix=ticker.lower())
    assert split_jump_check(frame.rename(columns=lambda c: c.split("_", 1)[1])).empty
    assert (frame[f"{ticker.lower()}_volume"] >= 0).all()


@needs_data
def test_shared_market_alignment():
    mkt, reps = load_shared_market(DATA)
    assert isinstance(reps[-1], LoadReport) and reps[-1].file == "aligned business-day frame"
    assert mkt.index.name == "date" and (mkt.index.day_of_week < 5).all() and mkt.index.is_unique
    assert set(["ig_oas_bp", "hy_oas_bp", "bbb_oas_bp", "aaa_oas_bp", "vix", "move", "ust10y_yield_pct",
                "ust2y_yield_pct", "fed_funds_pct", "lqd_adj_close_usd", "hyg_adj_close_usd"]) <= set(mkt.columns)
    # holidays forward-filled (<= 5 business days): no NaN in HY OAS on the calendar
    assert mkt["hy_oas_bp"].notna().all()
    # 2001-09-11..14 (markets closed): VIX carries the 09-10 value, no later value leaks backwards
    assert (mkt.loc["2001-09-11":"2001-09-14", "vix"] == mkt.loc["2001-09-10", "vix"]).all()
    inner, _ = load_shared_market(DATA, how="inner")
    assert inner.notna().all().all() and len(inner) < len(mkt)


# ---------------------------------------------------------------- malformed files
def _w(tmp_path, name, text):
    p = tmp_path/name
    p.write_text(text)
    return p


@pytest.mark.parametrize("name, text, kwargs, expected", [
    ("neg.csv", "observation_date,BAMLH0A0HYM2\n2020-01-02,3.1\n2020-01-03,-0.2\n", dict(unit="bp"),
     "neg.csv: column 'BAMLH0A0HYM2', row 2 (file line 3, date 2020-01-03): negative value"),
    ("mix.csv", "DATE,HY\n2020-01-02,3.1\n2020-01-03,3.2\n2020-01-06,315\n", dict(unit="bp"),
     "mix.csv: column 'HY', row 3 (file line 4, date 2020-01-06): value 315.0 is 98.4 x the previous"),
    ("mix_down.csv", "DATE,HY\n2020-01-02,310\n2020-01-03,3.2\n", dict(unit="bp", source_unit="bp"),
     "mix_down.csv: column 'HY', row 2 (file line 3, date 2020-01-03)"),
    ("text.csv", "DATE,HY\n2020-01-02,3.1\n2020-01-03,n/a\n", dict(unit="bp"),
     "text.csv: column 'HY', row 2 (file line 3, date 2020-01-03): non-numeric cell 'n/a'"),
    ("baddate.csv", "DATE,HY\n2020-01-02,3.1\n2020-02-30,3.2\n", dict(unit="bp"),
     "baddate.csv: column 'DATE', row 2 (file line 3): unreadable date '2020-02-30'"),
    ("dupe.csv", "DATE,HY\n2020-01-03,3.1\n2020-01-02,3.0\n2020-01-03,3.4\n", dict(unit="bp"),
     "dupe.csv: column 'HY', row 3 (file line 4, date 2020-01-03): date appears 2 times (rows [1, 3])"),
    ("inbp.csv", "DATE,HY\n2020-01-02,310\n2020-01-03,312\n", dict(unit="bp"), "pass source_unit='bp'"),
    ("cols.csv", "DATE,A,B\n2020-01-02,1,2\n", dict(unit="bp"), "expected two columns"),
])
def test_fred_malformed_rejected(tmp_path, name, text, kwargs, expected):
    with pytest.raises(DataError) as err:
        load_fred_csv(_w(tmp_path, name, text), **kwargs)
    assert expected in str(err.value)


def test_fred_repairs_reported(tmp_path):
    p = _w(tmp_path, "messy.csv", "observation_date,X\n2020-01-06,3.3\n2020-01-02,3.1\n2020-01-03,.\n"
           "2020-01-02,3.1\n2020-01-31,3.0\n2020-02-01,3.0\n2020-02-03,\n")
    frame, rep = load_fred_csv(p, unit="bp")
    assert rep.rows_read == 7 and rep.rows_kept == 5
    assert rep.repaired == {"rows out of date order (sorted)": 2, "duplicate dates with identical values (kept once)": 1}
    assert rep.dropped == {WEEKEND: 1}
    assert rep.missing_left == {"X": 2} and rep.missing_filled == {}
    assert rep.longest_gap_bdays["X"] == (18, "2020-01-07")
    assert frame["X"].iloc[0] == pytest.approx(310.0)
    filled, rep2 = load_fred_csv(p, unit="bp", ffill_limit=1)
    assert rep2.missing_filled == {"X": 2} and filled["X"].notna().all()
    kept, rep3 = load_fred_csv(p, unit="bp", drop_weekends=False)
    assert pd.Timestamp("2020-02-01") in kept.index and rep3.dropped == {}


def test_generic_wide_long_and_errors(tmp_path):
    w, _ = load_csv(_w(tmp_path, "w.csv", "Date,a,b\n2020-01-03,1,NA\n2020-01-02,2,3\n"))
    assert list(w.index.strftime("%d")) == ["02", "03"] and np.isnan(w.loc["2020-01-03", "b"])
    with pytest.raises(DataError, match=r"wbad.csv: column 'b', row 2 \(file line 3, date 2020-01-02\): non-numeric"):
        load_csv(_w(tmp_path, "wbad.csv", "Date,a,b\n2020-01-03,1,2\n2020-01-02,2,x\n"))
    lg, rep = load_csv(_w(tmp_path, "l.csv", "d,s,v\n2020-01-02,A,1\n2020-01-02,B,2\n2020-01-02,A,1\n"),
                       layout="long", date_col="d", series_col="s", value_col="v")
    assert lg.loc["2020-01-02"].tolist() == [1.0, 2.0] and sum(rep.repaired.values()) == 1
    with pytest.raises(DataError, match=r"lbad.csv: column 'A', row 3 \(file line 4, date 2020-01-02\)"):
        load_csv(_w(tmp_path, "lbad.csv", "date,series,value\n2020-01-02,A,1\n2020-01-02,B,2\n2020-01-02,A,5\n"),
                 layout="long")
    with pytest.raises(DataError, match="column missing"):
        load_csv(_w(tmp_path, "lcol.csv", "date,name,value\n2020-01-02,A,1\n"), layout="long")


def test_parquet_long(tmp_path):
    p = tmp_path/"x.parquet"
    pd.DataFrame({"date": pd.to_datetime(["2020-01-03", "2020-01-02"]), "series": ["oas_bp"] * 2,
                  "value": [101.0, 100.0]}).to_parquet(p)
    frame, rep = load_csv(p, layout="long", nonnegative=["oas_bp"])
    assert frame["oas_bp"].tolist() == [100.0, 101.0] and rep.repaired == {}  # long files: order is free


def test_ohlcv_missing_split_rejected(tmp_path):
    head = "Date,Open,High,Low,Close,Adj Close,Volume,Dividends,Split\n"
    ok = head + "2019-05-03,36,36,36,36.0,99.0,100,0,1\n2019-05-06,108,108,108,108.3,99.3,100,0,0.3333333333\n"
    assert load_ohlcv(_w(tmp_path, "ok.csv", ok))[0]["total_return"].iloc[-1] == pytest.approx(99.3 / 99.0 - 1)
    with pytest.raises(DataError, match=r"bad.csv: column 'Close', row 2 \(file line 3, date 2019-05-06\)"):
        load_ohlcv(_w(tmp_path, "bad.csv", ok.replace(",0.3333333333", ",1")))
    with pytest.raises(DataError, match=r"negvol.csv: column 'Volume', row 1"):
        load_ohlcv(_w(tmp_path, "negvol.csv", ok.replace(",100,0,1", ",-100,0,1")))


# ---------------------------------------------------------------- fetch_fred over loopback HTTP
FRED_BODY = b"observation_date,BAMLH0A0HYM2\n2020-03-20,10.0\n2020-03-23,10.87\n2020-03-24,.\n"


class _FredHandler(http.server.BaseHTTPRequestHandler):
    requests = []

    def do_GET(self):
        type(self).requests.append(self.path)
        body = FRED_BODY if self.path.endswith("id=BAMLH0A0HYM2") else b"<html>not found</html>"
        self.send_response(200 if body is FRED_BODY else 404)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fred_server():
    _FredHandler.requests = []
    srv = http.server.HTTPServer(("127.0.0.1", 0), _FredHandler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/graph/fredgraph.csv"
    srv.shutdown()
    srv.server_close()


def test_fetch_fred_downloads_and_caches(tmp_path, fred_server):
    frame, rep = fetch_fred("BAMLH0A0HYM2", tmp_path/"cache", base_url=fred_server, unit="bp")
    assert (tmp_path/"cache"/"BAMLH0A0HYM2.csv").read_bytes() == FRED_BODY
    assert frame.loc["2020-03-23", "BAMLH0A0HYM2"] == pytest.approx(1087.0) and rep.missing_left == {"BAMLH0A0HYM2": 1}
    assert _FredHandler.requests == ["/graph/fredgraph.csv?id=BAMLH0A0HYM2"]
    fetch_fred("BAMLH0A0HYM2", tmp_path/"cache", base_url=fred_server, unit="bp")  # cached: no request
    assert len(_FredHandler.requests) == 1
    fetch_fred("BAMLH0A0HYM2", tmp_path/"cache", base_url=fred_server, unit="bp", refresh=True)
    assert len(_FredHandler.requests) == 2
    assert not list((tmp_path/"cache").glob("*.part"))


def test_fetch_fred_http_error_and_bad_body(tmp_path, fred_server):
    with pytest.raises(FetchError, match=r"HTTP 404 .*unknown series id 'DGS10'.*load_fred_csv"):
        fetch_fred("DGS10", tmp_path/"cache", base_url=fred_server)  # server answers 404
    assert not (tmp_path/"cache"/"DGS10.csv").exists()
    with pytest.raises(ValueError, match="series_id"):
        fetch_fred("DGS10&x=1", tmp_path/"cache", base_url=fred_server)


def test_fetch_fred_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(FetchError) as err:
        fetch_fred("BAMLH0A0HYM2", tmp_path/"cache", base_url=f"http://127.0.0.1:{port}/fredgraph.csv", timeout=2)
    msg = str(err.value)
    assert "BAMLH0A0HYM2" in msg and "refused" in msg.lower() and str(tmp_path/"cache"/"BAMLH0A0HYM2.csv") in msg
    assert not (tmp_path/"cache"/"BAMLH0A0HYM2.csv").exists()


@needs_data
def test_real_monthly_series_keeps_weekend_dated_months():
    frame, rep = load_fred_csv(DATA/"UNRATE.csv", unit="percent")
    assert len(frame) == 557 and rep.dropped == {}
    assert pd.Timestamp("2020-02-01") in frame.index  # a Saturday
    assert rep.longest_gap_bdays["UNRATE"][1] == "2025-09-02"  # the 2025-10 print missing (shutdown)
    forced, rep2 = load_fred_csv(DATA/"UNRATE.csv", unit="percent", drop_weekends=True)
    assert sum(rep2.dropped.values()) == 557 - len(forced) > 0
