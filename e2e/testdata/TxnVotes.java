// TxnVotes writes votes to one partition in Kafka transactions, as an
// exactly-once upstream job (Kafka Streams, Flink) does: each stdin line is
// "C<TAB>value" or "A<TAB>value", and each run of lines with the same
// letter is one transaction, committed (C) or aborted (A). Run as a
// single-file program: java -cp 'deploy/kafka/lib/*' TxnVotes.java
// BOOTSTRAP TOPIC PARTITION TRANSACTIONAL_ID < lines
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnVotes {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("transactional.id", args[3]);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        String topic = args[1];
        int partition = Integer.parseInt(args[2]);
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(p)) {
            prod.initTransactions();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String open = null;
            for (String line; (line = in.readLine()) != null; ) {
                String kind = line.substring(0, 1), value = line.substring(2);
                if (!kind.equals(open)) {
                    end(prod, open);
                    prod.beginTransaction();
                    open = kind;
                }
                prod.send(new ProducerRecord<>(topic, partition, null, value)).get();
            }
            end(prod, open);
        }
        System.out.println("transactions done");
    }

    static void end(KafkaProducer<String, String> prod, String kind) {
        if ("C".equals(kind)) {
            prod.commitTransaction();
        } else if ("A".equals(kind)) {
            prod.abortTransaction();
        }
    }
}
