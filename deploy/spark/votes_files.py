"""The seed notebook's streaming query, unchanged in substance, over the
JSON files votestream's producer writes (OUTPUT_DIR, ./vote_stream with
`make run`):

    spark.readStream.schema(schema).json(OUTPUT_DIR)
    foreachBatch: groupBy("candidate").sum("vote_count"), accumulated

It runs with trigger(availableNow=True) again and again, one checkpoint
location for all runs, so each run reads only the files that appeared since
the last, until --expect votes are counted or --idle seconds pass without a
new file. It prints the accumulated totals after each micro-batch, as the
seed does, and with --out writes them (per candidate, and per candidate and
state) as JSON.

    python3 deploy/spark/votes_files.py --dir ./vote_stream --expect 1146500
"""

import argparse
import os
import tempfile
import time

from pyspark.sql.functions import col

import seed

class Accumulator:
    """The seed's accumulated_votes, per candidate and per candidate and
    state. The seed joins each batch's DataFrame onto the last; here the
    batch's few aggregated rows are collected and added up on the driver,
    which gives the same totals without a plan that grows every batch."""

    def __init__(self):
        self.by_candidate = {}
        self.by_state = {}
        self.batches = 0

    def add(self, batch_df, batch_id):
        batch_df.persist()
        vote_counts = batch_df.groupBy("candidate").sum("vote_count") \
            .withColumnRenamed("sum(vote_count)", "batch_total")
        for r in vote_counts.collect():
            self.by_candidate[r["candidate"]] = self.by_candidate.get(r["candidate"], 0) + (r["batch_total"] or 0)
        for r in batch_df.groupBy("candidate", "state").sum("vote_count").collect():
            key = "%s|%s" % (r["candidate"], r["state"])
            self.by_state[key] = self.by_state.get(key, 0) + (r["sum(vote_count)"] or 0)
        batch_df.unpersist()
        self.batches += 1
        print("Total acumulado até o micro-batch %d:" % batch_id, flush=True)
        for cand, n in sorted(self.by_candidate.items(), key=lambda kv: -kv[1]):
            print("  %-20s %10d" % (cand, n), flush=True)

    def total(self):
        return sum(self.by_candidate.values())

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default="./vote_stream", help="the producer's OUTPUT_DIR")
    p.add_argument("--expect", type=int, default=0, help="stop once this many votes are counted (0: on --idle)")
    p.add_argument("--idle", type=float, default=30, help="stop after this many seconds without a new file")
    p.add_argument("--checkpoint", default="", help="checkpoint location (default: a fresh temporary folder)")
    p.add_argument("--out", default="", help="write the final totals here as JSON")
    p.add_argument("--master", default="local[2]")
    a = p.parse_args()

    spark = seed.session("VoteCountStreaming", a.master)
    ckpt = a.checkpoint or tempfile.mkdtemp(prefix="votes-files-ckpt-")
    acc = Accumulator()
    os.makedirs(a.dir, exist_ok=True)
    vote_stream_df = spark.readStream.schema(seed.schema).json(a.dir)
    last_new = time.monotonic()
    first = True
    while True:
        before = acc.batches
        query = vote_stream_df.writeStream \
            .outputMode("append") \
            .foreachBatch(acc.add) \
            .option("checkpointLocation", ckpt) \
            .trigger(availableNow=True) \
            .start()
        query.awaitTermination()
        if first:
            print("watching %s" % a.dir, flush=True)
            first = False
        if acc.batches > before:
            last_new = time.monotonic()
        if a.expect and acc.total() >= a.expect:
            break
        if time.monotonic() - last_new > a.idle:
            break
        time.sleep(0.5)
    print("counted %d votes in %d micro-batches" % (acc.total(), acc.batches), flush=True)
    if a.out:
        seed.write_json(a.out, {"candidate": acc.by_candidate, "candidate_state": acc.by_state,
                                "votes": acc.total(), "batches": acc.batches})
    spark.stop()

if __name__ == "__main__":
    main()
