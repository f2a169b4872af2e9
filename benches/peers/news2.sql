-- The batch anchor: the peers' NEWS2 alerts (benches/peers/news2_peer.py's policy) computed by
-- DuckDB in one query over a Vigil archive, as a researcher would: each observation set (a
-- patient's observations at one event time) with the latest value of each vital as of it
-- (window functions), the NEWS2 sub-scores of the values as charted (half-up), its band, and
-- the raised band as of each set. That band is a running maximum of the bands since the last
-- set that could lower it (a complete set whose charted values differ from the previous set's),
-- which is what a raise-at-once, lower-on-the-first-new-complete-lower-set policy amounts to.
-- `{archive}` is replaced by benches/peers/duckdb_news2.py. One row per alert:
-- patient, time_us, event, band.
WITH obs AS (
    SELECT patient, epoch_us(time) AS t, vital, value, level
    FROM read_parquet('{archive}/observations/**/*.parquet', hive_partitioning = false)
    WHERE processed
),
sets AS (
    SELECT patient, t,
        max(value) FILTER (vital = 'respiratory_rate') AS rr,
        max(value) FILTER (vital = 'spo2') AS spo2,
        max(value) FILTER (vital = 'supplemental_oxygen') AS o2,
        max(value) FILTER (vital = 'systolic_bp') AS sbp,
        max(value) FILTER (vital = 'heart_rate') AS hr,
        max(level) FILTER (vital = 'consciousness') AS acvpu,
        max(value) FILTER (vital = 'temperature') AS temp
    FROM obs GROUP BY patient, t
),
latest AS (
    SELECT patient, t,
        round(last_value(rr IGNORE NULLS) OVER w :: DECIMAL(18, 3), 0) AS rr,
        round(last_value(spo2 IGNORE NULLS) OVER w :: DECIMAL(18, 3), 0) AS spo2,
        CASE WHEN last_value(o2 IGNORE NULLS) OVER w > 0 THEN 'oxygen'
             WHEN last_value(o2 IGNORE NULLS) OVER w IS NOT NULL THEN 'air' END AS air,
        round(last_value(sbp IGNORE NULLS) OVER w :: DECIMAL(18, 3), 0) AS sbp,
        round(last_value(hr IGNORE NULLS) OVER w :: DECIMAL(18, 3), 0) AS hr,
        last_value(acvpu IGNORE NULLS) OVER w AS acvpu,
        round(last_value(temp IGNORE NULLS) OVER w :: DECIMAL(18, 3), 1) AS temp
    FROM sets
    WINDOW w AS (PARTITION BY patient ORDER BY t ROWS UNBOUNDED PRECEDING)
),
scored AS (
    SELECT *,
        [CASE WHEN rr <= 8 THEN 3 WHEN rr <= 11 THEN 1 WHEN rr <= 20 THEN 0 WHEN rr <= 24 THEN 2
              WHEN rr IS NOT NULL THEN 3 END,
         CASE WHEN spo2 <= 91 THEN 3 WHEN spo2 <= 93 THEN 2 WHEN spo2 <= 95 THEN 1
              WHEN spo2 IS NOT NULL THEN 0 END,
         CASE air WHEN 'oxygen' THEN 2 WHEN 'air' THEN 0 END,
         CASE WHEN sbp <= 90 THEN 3 WHEN sbp <= 100 THEN 2 WHEN sbp <= 110 THEN 1
              WHEN sbp <= 219 THEN 0 WHEN sbp IS NOT NULL THEN 3 END,
         CASE WHEN hr <= 40 THEN 3 WHEN hr <= 50 THEN 1 WHEN hr <= 90 THEN 0 WHEN hr <= 110 THEN 1
              WHEN hr <= 130 THEN 2 WHEN hr IS NOT NULL THEN 3 END,
         CASE WHEN acvpu = 'A' THEN 0 WHEN acvpu IS NOT NULL THEN 3 END,
         CASE WHEN temp <= 35.0 THEN 3 WHEN temp <= 36.0 THEN 1 WHEN temp <= 38.0 THEN 0
              WHEN temp <= 39.0 THEN 1 WHEN temp IS NOT NULL THEN 2 END] AS sub,
        row(rr, spo2, air, sbp, hr, acvpu, temp) IS DISTINCT FROM
            lag(row(rr, spo2, air, sbp, hr, acvpu, temp)) OVER (PARTITION BY patient ORDER BY t)
            AS new_set
    FROM latest
),
banded AS (
    SELECT patient, t, new_set,
        len(list_filter(sub, lambda s: s IS NOT NULL)) = 7 AS complete,
        CASE WHEN list_sum(sub) >= 7 THEN 3 WHEN list_sum(sub) >= 5 THEN 2
             WHEN list_contains(sub, 3) THEN 1
             WHEN len(list_filter(sub, lambda s: s IS NOT NULL)) = 7 THEN 0 END AS band
    FROM scored
),
raised AS (
    SELECT patient, t, max(coalesce(band, 0)) OVER (
        PARTITION BY patient, lowering ORDER BY t ROWS UNBOUNDED PRECEDING) AS raised
    FROM (SELECT *, count(*) FILTER (complete AND new_set) OVER (
              PARTITION BY patient ORDER BY t ROWS UNBOUNDED PRECEDING) AS lowering
          FROM banded)
),
changes AS (
    SELECT patient, t, raised,
        lag(raised, 1, 0) OVER (PARTITION BY patient ORDER BY t) AS before
    FROM raised
)
SELECT patient, t AS time_us,
    CASE WHEN raised > before THEN 'raised' ELSE 'lowered' END AS event,
    ['low', 'low-medium', 'medium', 'high'][raised + 1] AS band
FROM changes WHERE raised <> before
ORDER BY patient, time_us
