"""Spark Structured Streaming counting the votes topic: each record's value
parsed with the seed notebook's schema, the seed's aggregation
(sum("vote_count")) per candidate x state x age group, kept in Spark's
state store under --checkpoint, so a job killed and started again with the
same checkpoint goes on from where it was and ends exact.

After every micro-batch it writes the whole table (complete output mode) to
--out as JSON, atomically: the cells, the records read and the records
whose value did not parse (counted, never dropped).

    python3 deploy/spark/votes_kafka.py --brokers localhost:9092 --topic votes --out totals.json

With --available-now it reads what the topic holds when it starts and
exits; otherwise it runs until stopped, as fast as records arrive.
"""

import argparse
import tempfile

from pyspark.sql.functions import col, from_json, lit, sum as sum_, when

import seed

CELL = ["candidate", "state", "age_group"]


def totals_writer(path):
    def write(batch_df, batch_id):
        cells = {}
        records = unparsed = 0
        for r in batch_df.collect():
            records += r["records"]
            if r["candidate"] is None:
                unparsed += r["records"]
                continue
            cells["|".join(r[c] for c in CELL)] = r["votes"]
        doc = {"batch": batch_id, "records": records, "unparsed": unparsed,
               "votes": sum(cells.values()), "cells": cells}
        if path:
            seed.write_json(path, doc)
        print("micro-batch %d: %d records, %d votes, %d unparsed" % (batch_id, records, doc["votes"], unparsed), flush=True)
    return write


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--brokers", default="localhost:9092")
    p.add_argument("--topic", default="votes")
    p.add_argument("--checkpoint", default="", help="checkpoint location (default: a fresh temporary folder)")
    p.add_argument("--out", default="", help="JSON file rewritten after every micro-batch")
    p.add_argument("--available-now", action="store_true", help="read what the topic holds now, then exit")
    p.add_argument("--max-offsets", type=int, default=0, help="maxOffsetsPerTrigger (0: no limit)")
    p.add_argument("--master", default="local[2]")
    a = p.parse_args()

    spark = seed.session("VoteCountKafka", a.master, jars=True)
    reader = spark.readStream.format("kafka") \
        .option("kafka.bootstrap.servers", a.brokers) \
        .option("subscribe", a.topic) \
        .option("startingOffsets", "earliest") \
        .option("failOnDataLoss", "true")
    if a.max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", a.max_offsets)
    votes = reader.load() \
        .select(from_json(col("value").cast("string"), seed.schema).alias("v")) \
        .select("v.*")
    # A record that does not parse has null fields: it is kept as a group of
    # its own and reported, never silently dropped.
    counts = votes.groupBy(*CELL).agg(
        sum_(when(col("candidate").isNull(), lit(0)).otherwise(col("vote_count"))).alias("votes"),
        sum_(lit(1)).alias("records"))
    w = counts.writeStream.outputMode("complete") \
        .foreachBatch(totals_writer(a.out)) \
        .option("checkpointLocation", a.checkpoint or tempfile.mkdtemp(prefix="votes-kafka-ckpt-"))
    w = w.trigger(availableNow=True) if a.available_now else w.trigger(processingTime="0 seconds")
    q = w.start()
    print("query started", flush=True)
    q.awaitTermination()
    spark.stop()


if __name__ == "__main__":
    main()
