/*
 * LocalMongo - the local MongoDB wire-protocol server of changetrail's tests
 * and quick start: mongo-java-server on 127.0.0.1, persistent (H2 MVStore
 * file) or in memory. It holds MongoDB's data model (nested arrays, `$` and
 * `.` keys, BSON dates, an indexed _id), which FerretDB 1.24 could not.
 * Started and stopped by deploy/local/mongodb.sh; SIGTERM closes the store
 * cleanly (writes acknowledged before it are on disk).
 *
 * usage: java -cp "libs/*:classes" LocalMongo --port N [--dir DIR | --memory]
 */
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

import java.io.File;
import java.util.concurrent.CountDownLatch;

public final class LocalMongo {
    private LocalMongo() {
    }

    public static void main(String[] args) throws Exception {
        int port = 27017;
        String dir = null;
        boolean memory = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--port": port = Integer.parseInt(args[++i]); break;
                case "--dir": dir = args[++i]; break;
                case "--memory": memory = true; break;
                default:
                    System.err.println("usage: LocalMongo --port N [--dir DIR | --memory]");
                    System.exit(2);
            }
        }
        if (!memory && dir == null) {
            System.err.println("LocalMongo: --dir DIR or --memory is required");
            System.exit(2);
        }
        MongoBackend backend;
        if (memory) {
            backend = new MemoryBackend();
        } else {
            new File(dir).mkdirs();
            backend = new H2Backend(new File(dir, "db.mv").getPath());
        }
        MongoServer server = new MongoServer(backend);
        server.bind("127.0.0.1", port);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // shutdown() closes the connections, then the backend, which
            // commits and closes the H2 store.
            server.shutdown();
            stopped.countDown();
        }));
        System.out.println("LocalMongo ready port=" + port + " backend=" + (memory ? "memory" : "h2 " + dir));
        System.out.flush();
        stopped.await();
    }
}
