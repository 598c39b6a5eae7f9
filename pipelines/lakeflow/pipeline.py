"""The Lakeflow pipeline source: Databricks (and open-source `spark-pipelines`) runs this file.

It registers the declared graph; its settings come from the pipeline's configuration
(`mls2.landing`, `mls2.landing_format`, `mls2.schema_location`; see `registration.LakeflowSettings`).
"""

from pyspark.sql import SparkSession

try:
    from pyspark import pipelines as dp
except ImportError:  # Databricks runtimes older than `pyspark.pipelines`
    import dlt as dp  # type: ignore[no-redef]

from pipelines.graph import load_graph
from pipelines.lakeflow.registration import LakeflowSettings, register_graph

spark = SparkSession.active()
register_graph(dp, spark, load_graph(), LakeflowSettings.from_conf(spark.conf))
