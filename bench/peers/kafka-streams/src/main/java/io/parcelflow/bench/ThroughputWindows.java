package io.parcelflow.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;

/**
 * Kafka Streams peer of parcelflow's throughput windows: parcels and grams per hub and flow in
 * 1-minute tumbling windows by event time (120 s grace), only closed windows emitted.
 *
 * <p>Reads the three source topics as bytes, decodes each Avro single-object record with Apache
 * Avro (writer schema chosen by its fingerprint, schemas read from parcelflow's schemas/), re-keys
 * flow scans by hub|flow with the scan's event time as record time, and aggregates.
 *
 * <p>Arguments: bootstrap, topic prefix, application id, output topic, schemas dir, state dir, and
 * optionally the grace in milliseconds (default 120 s, parcelflow's default).
 * Prints "first &lt;unix seconds&gt;" when the first record is decoded. Runs until SIGTERM.
 */
public final class ThroughputWindows {
  static final Duration WINDOW = Duration.ofSeconds(60);
  static final Duration GRACE = Duration.ofSeconds(120);
  static final long COMMIT_INTERVAL_MS = 2800; // Faust's default, so "all committed" is detected alike

  private ThroughputWindows() {}

  /** Parcels and grams of one window: two longs, big-endian. */
  static final class Totals {
    static byte[] of(long parcels, long grams) {
      return ByteBuffer.allocate(16).putLong(parcels).putLong(grams).array();
    }

    static long parcels(byte[] totals) {
      return ByteBuffer.wrap(totals).getLong(0);
    }

    static long grams(byte[] totals) {
      return ByteBuffer.wrap(totals).getLong(8);
    }
  }

  /** Decodes scans and forwards flow scans keyed hub|flow, valued grams, timed by event time. */
  static final class DecodeAndKey implements Processor<byte[], byte[], String, Long> {
    private final Map<Long, GenericDatumReader<GenericRecord>> readers;
    private ProcessorContext<String, Long> context;
    private BinaryDecoder decoder;
    private boolean first = true;

    DecodeAndKey(Map<Long, GenericDatumReader<GenericRecord>> readers) {
      this.readers = readers;
    }

    @Override
    public void init(ProcessorContext<String, Long> context) {
      this.context = context;
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
      if (first) {
        first = false;
        System.out.println("first " + System.currentTimeMillis() / 1000.0);
        System.out.flush();
      }
      byte[] data = record.value();
      if (data == null || data.length < 10 || data[0] != (byte) 0xC3 || data[1] != 0x01) {
        return;
      }
      long fingerprint = ByteBuffer.wrap(data, 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
      GenericDatumReader<GenericRecord> reader = readers.get(fingerprint);
      if (reader == null) {
        return;
      }
      GenericRecord scan;
      try {
        decoder = DecoderFactory.get().binaryDecoder(data, 10, data.length - 10, decoder);
        scan = reader.read(null, decoder);
      } catch (IOException | RuntimeException e) {
        return;
      }
      GenericRecord header = (GenericRecord) scan.get("header");
      String flow = flowOf(header.get("event_type").toString());
      if (flow == null) {
        return;
      }
      Object grams = header.get("weight_grams");
      long eventTime = (Long) header.get("event_time");
      context.forward(
          record.withKey(header.get("hub") + "|" + flow)
              .withValue(grams == null ? 0L : ((Integer) grams).longValue())
              .withTimestamp(eventTime));
    }
  }

  static String flowOf(String eventType) {
    switch (eventType) {
      case "ULD_BREAKDOWN":
        return "inbound";
      case "SORTED":
        return "sorted";
      case "LOADED":
      case "ULD_BUILDUP":
        return "outbound";
      default:
        return null;
    }
  }

  static Map<Long, GenericDatumReader<GenericRecord>> readers(Path schemas) throws IOException {
    Map<Long, GenericDatumReader<GenericRecord>> readers = new HashMap<>();
    String header = Files.readString(schemas.resolve("scan_header.avsc"));
    for (String source : List.of("flight", "sorter", "truck")) {
      Schema.Parser parser = new Schema.Parser();
      parser.parse(header);
      Schema schema = parser.parse(Files.readString(schemas.resolve(source + "_scan.avsc")));
      readers.put(SchemaNormalization.parsingFingerprint64(schema), new GenericDatumReader<>(schema));
    }
    return readers;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6 && args.length != 7) {
      System.err.println("usage: ThroughputWindows BOOTSTRAP PREFIX APP_ID OUTPUT SCHEMAS_DIR STATE_DIR [GRACE_MS]");
      System.exit(2);
    }
    Duration grace = args.length == 7 ? Duration.ofMillis(Long.parseLong(args[6])) : GRACE;
    String prefix = args[1];
    Map<Long, GenericDatumReader<GenericRecord>> readers = readers(Path.of(args[4]));
    Serde<byte[]> bytes = Serdes.ByteArray();
    Serde<byte[]> totalsSerde = Serdes.ByteArray();

    StreamsBuilder builder = new StreamsBuilder();
    builder
        .stream(
            List.of(prefix + ".scans.flight", prefix + ".scans.sorter", prefix + ".scans.truck"),
            Consumed.with(bytes, bytes))
        .process(() -> new DecodeAndKey(readers))
        .groupByKey(Grouped.with("hub-flow", Serdes.String(), Serdes.Long()))
        .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, grace))
        .aggregate(
            () -> Totals.of(0, 0),
            (key, grams, totals) -> Totals.of(Totals.parcels(totals) + 1, Totals.grams(totals) + grams),
            Materialized.with(Serdes.String(), totalsSerde))
        .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
        .toStream()
        .map(
            (window, totals) ->
                org.apache.kafka.streams.KeyValue.pair(
                    window.key() + "|60|" + window.window().start(),
                    "{\"parcels\":" + Totals.parcels(totals) + ",\"grams\":" + Totals.grams(totals) + "}"))
        .to(args[3], Produced.with(Serdes.String(), Serdes.String()));

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[2]);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, COMMIT_INTERVAL_MS);
    props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(20));
      stopped.countDown();
    }));
    streams.start();
    stopped.await();
  }
}
