// DynamoDB Local bound to one address. The jar's own main (ServerRunner) takes no host and its
// Jetty server listens on every interface, so anyone who can reach this machine could read and
// write the tables (the users and their ACLs among them). This starts the same server from the
// same command-line arguments, with its Jetty connector set to the given host before it opens.
// Usage: java -cp <this class>:DynamoDBLocal.jar DynamoDbLocalOnHost <host> <DynamoDBLocal.jar arguments...>
// (local/dynamodb-local.ts compiles it once, with the JDK compiler module of the java that runs it.)

import java.lang.reflect.Field;
import java.util.Arrays;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public final class DynamoDbLocalOnHost {
  public static void main(String[] args) throws Exception {
    if (args.length < 1) fail("usage: DynamoDbLocalOnHost <host> [DynamoDBLocal.jar arguments]");
    String host = args[0];
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(Arrays.copyOfRange(args, 1, args.length));
    Server server;
    try {
      Field field = DynamoDBProxyServer.class.getDeclaredField("server");
      field.setAccessible(true);
      server = (Server) field.get(proxy);
    } catch (ReflectiveOperationException | ClassCastException e) {
      fail("this DynamoDB Local has no Jetty server where expected (" + e + "): it cannot be bound to " + host);
      return;
    }
    Connector[] connectors = server.getConnectors();
    if (connectors.length == 0) fail("this DynamoDB Local has no connector to bind to " + host);
    for (Connector connector : connectors) {
      if (!(connector instanceof ServerConnector)) fail("this DynamoDB Local's connector is a " + connector.getClass().getName() + ": it cannot be bound to " + host);
      ((ServerConnector) connector).setHost(host);
    }
    proxy.start();
  }

  private static void fail(String message) {
    System.err.println(message);
    System.exit(1);
  }
}
