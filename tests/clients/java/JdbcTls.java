import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Properties;

/**
 * Logs in to QuiverDB over TLS with pgjdbc: SCRAM-SHA-256 with sslmode=require
 * and sslmode=verify-full (against the test CA), a wrong password (28P01), and
 * a plaintext login that a --require-tls server refuses.
 * Arguments: port, CA certificate path.
 */
public class JdbcTls {
    static Connection connect(String port, String sslmode, String ca, String password) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", "admin");
        props.setProperty("password", password);
        props.setProperty("sslmode", sslmode);
        if (ca != null) {
            props.setProperty("sslrootcert", ca);
        }
        return DriverManager.getConnection("jdbc:postgresql://localhost:" + port + "/quiver", props);
    }

    public static void main(String[] args) throws Exception {
        String port = args[0];
        String ca = args[1];
        for (String mode : new String[] {"require", "verify-full"}) {
            try (Connection c = connect(port, mode, mode.equals("verify-full") ? ca : null, "adminpw");
                 ResultSet rs = c.createStatement().executeQuery("SELECT current_user")) {
                rs.next();
                if (!rs.getString(1).equals("admin")) {
                    throw new AssertionError(mode + ": logged in as " + rs.getString(1));
                }
                System.out.println("ok: sslmode=" + mode);
            }
        }
        try {
            connect(port, "require", null, "wrong").close();
            throw new AssertionError("a wrong password was accepted");
        } catch (SQLException e) {
            if (!"28P01".equals(e.getSQLState())) {
                throw new AssertionError("wrong password gave " + e.getSQLState() + ": " + e.getMessage());
            }
            System.out.println("ok: wrong password is 28P01");
        }
        try {
            connect(port, "disable", null, "adminpw").close();
            throw new AssertionError("a plaintext login was accepted");
        } catch (SQLException e) {
            if (!"28000".equals(e.getSQLState())) {
                throw new AssertionError("plaintext login gave " + e.getSQLState() + ": " + e.getMessage());
            }
            System.out.println("ok: plaintext refused");
        }
    }
}
