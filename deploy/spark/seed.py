"""What the two jobs share: the seed notebook's schema, and a Spark session
made the same way for both (local jars, small shuffles)."""

import glob
import json
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, StringType, StructType

# The seed's schema, field for field (vote-count-streaming-notebook, Passo 2).
schema = StructType() \
    .add("vote_id", StringType()) \
    .add("timestamp", StringType()) \
    .add("state", StringType()) \
    .add("candidate", StringType()) \
    .add("age_group", StringType()) \
    .add("vote_count", IntegerType())

HERE = os.path.dirname(os.path.abspath(__file__))


def session(app, master, jars=False):
    """A Spark session on master; with jars, Spark's Kafka source from
    deploy/spark/lib (make spark-jars) as local files: nothing is fetched
    from the network when the job runs."""
    # Python workers, if Spark starts any, run this job's Python.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = SparkSession.builder.appName(app).master(master) \
        .config("spark.sql.shuffle.partitions", "2") \
        .config("spark.ui.enabled", "false") \
        .config("spark.ui.showConsoleProgress", "false") \
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "false")
    if jars:
        found = sorted(glob.glob(os.path.join(HERE, "lib", "*.jar")))
        if not found:
            raise SystemExit("no jars in %s: run make spark-jars" % os.path.join(HERE, "lib"))
        b = b.config("spark.jars", ",".join(found))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def write_json(path, doc):
    """Writes doc to path whole or not at all (temporary file, rename), so a
    reader polling it never sees half of it."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
