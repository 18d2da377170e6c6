package io.votestream.peers;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

/**
 * The Kafka Streams peer of votestream's counter: each vote of the votes
 * topic, keyed by its cell (candidate|state|age group), counted in the
 * state store "votes-by-cell" with exactly_once_v2. A record that is not a
 * vote is counted under the cell "unparsed", never dropped. GET /totals on
 * the HTTP address serves the store as JSON, for the bench to compare with
 * the generator.
 *
 * <p>Arguments: brokers topic application-id state-dir http-addr threads
 */
public final class VoteCountStreams {
  static final String STORE = "votes-by-cell";
  static final String UNPARSED = "unparsed";

  private VoteCountStreams() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: VoteCountStreams brokers topic application-id state-dir http-host:port threads");
      System.exit(2);
    }
    KafkaStreams streams = new KafkaStreams(topology(args[1]), props(args[0], args[2], args[3], args[5]));
    streams.setStateListener((now, before) -> System.out.println("state " + now));
    Runtime.getRuntime().addShutdownHook(new Thread(streams::close));
    streams.start();
    serve(streams, args[4]);
  }

  static Properties props(String brokers, String appId, String stateDir, String threads) {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
    // Transactions commit every second, as votestream's counter
    // checkpoints (BATCH_MAX_WAIT): at the default 100 ms, each commit's
    // markers hold up the next transaction's first writes.
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 1000);
    // A member killed and replaced is noticed as fast as votestream's
    // counter notices (its GROUP_SESSION_TIMEOUT).
    p.put(StreamsConfig.consumerPrefix("session.timeout.ms"), 10000);
    return p;
  }

  static org.apache.kafka.streams.Topology topology(String topic) {
    ObjectMapper json = new ObjectMapper();
    StreamsBuilder b = new StreamsBuilder();
    b.stream(topic, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
        .map((k, v) -> KeyValue.pair(cell(json, v), 1L))
        .groupByKey(Grouped.with(Serdes.String(), Serdes.Long()))
        .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as(STORE)
            .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()));
    return b.build();
  }

  /** The vote's cell, parsed with the seed's schema; UNPARSED for anything else. */
  static String cell(ObjectMapper json, byte[] value) {
    try {
      JsonNode n = json.readTree(value);
      JsonNode c = n.get("candidate"), s = n.get("state"), a = n.get("age_group"), vc = n.get("vote_count");
      if (c == null || s == null || a == null || vc == null || vc.asInt() != 1) {
        return UNPARSED;
      }
      return c.asText() + "|" + s.asText() + "|" + a.asText();
    } catch (IOException | RuntimeException e) {
      return UNPARSED;
    }
  }

  static void serve(KafkaStreams streams, String addr) throws IOException {
    int colon = addr.lastIndexOf(':');
    HttpServer http = HttpServer.create(
        new InetSocketAddress(addr.substring(0, colon), Integer.parseInt(addr.substring(colon + 1))), 16);
    http.createContext("/totals", ex -> {
      byte[] body;
      int status = 200;
      try {
        body = totals(streams).getBytes(StandardCharsets.UTF_8);
      } catch (RuntimeException e) {
        // Not running yet, or rebalancing: the store cannot be read now.
        status = 503;
        body = String.valueOf(e.getMessage()).getBytes(StandardCharsets.UTF_8);
      }
      ex.sendResponseHeaders(status, body.length);
      try (OutputStream o = ex.getResponseBody()) {
        o.write(body);
      }
    });
    http.start();
    System.out.println("listening on " + http.getAddress().getHostString() + ":" + http.getAddress().getPort());
  }

  static String totals(KafkaStreams streams) {
    ReadOnlyKeyValueStore<String, Long> store =
        streams.store(StoreQueryParameters.fromNameAndType(STORE, QueryableStoreTypes.<String, Long>keyValueStore()));
    Map<String, Long> cells = new TreeMap<>();
    long records = 0;
    try (KeyValueIterator<String, Long> it = store.all()) {
      while (it.hasNext()) {
        KeyValue<String, Long> kv = it.next();
        cells.put(kv.key, kv.value);
        records += kv.value;
      }
    }
    Long unparsed = cells.remove(UNPARSED);
    StringBuilder sb = new StringBuilder("{\"records\":").append(records)
        .append(",\"unparsed\":").append(unparsed == null ? 0 : unparsed).append(",\"cells\":{");
    boolean first = true;
    for (Map.Entry<String, Long> e : cells.entrySet()) {
      sb.append(first ? "" : ",").append('"').append(e.getKey().replace("\"", "\\\"")).append("\":").append(e.getValue());
      first = false;
    }
    return sb.append("}}").toString();
  }
}
