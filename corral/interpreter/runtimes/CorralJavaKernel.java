// corral's Java kernel: `java CorralJavaKernel.java` (source-file mode, no build step).
//
// Cells run in a JShell whose execution engine is local (the snippets run in this JVM), so
// System.out/err of user code are this process's stdout/stderr pipes and state (variables,
// methods, classes, imports) persists across cells. Protocol: one request a line on stdin,
// "<base64 code> <base64 env>" (env = NUL-separated KEY=VALUE pairs); events go to fd 3 as JSON
// lines. SIGINT stops the running snippet; the kernel stays up.
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;

public class CorralJavaKernel {
    private static PrintStream control;
    private static JShell shell;

    public static void main(String[] args) throws Exception {
        control = new PrintStream(new FileOutputStream(inheritedFd(3)), true, StandardCharsets.UTF_8);
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        System.setOut(out);
        System.setErr(err);
        shell = JShell.builder().executionEngine("local").out(out).err(err).build();
        sandboxEnvAsProperties();
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), sig -> shell.stop());
        // Warm the compiler so the first user cell does not pay for it.
        shell.eval("int $corralWarmup = 0;");
        send("{\"type\":\"ready\"}");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            String[] parts = line.split(" ", -1);
            String code = decode(parts[0]);
            String env = parts.length > 1 ? decode(parts[1]) : "";
            Map<String, String[]> saved = applyEnv(env);
            try {
                runCell(code);
            } catch (Throwable t) {
                sendError(t.getClass().getSimpleName(), String.valueOf(t.getMessage()), stackOf(t));
            } finally {
                restoreEnv(saved);
                System.out.flush();
                System.err.flush();
                send("{\"type\":\"done\"}");
            }
        }
        System.exit(0);
    }

    // fd 3 is inherited; reopening /proc/self/fd/3 would fail (the pipe belongs to the daemon's
    // uid), so wrap the descriptor itself (needs --add-opens java.base/java.io).
    private static FileDescriptor inheritedFd(int number) throws ReflectiveOperationException {
        FileDescriptor fd = new FileDescriptor();
        Field field = FileDescriptor.class.getDeclaredField("fd");
        field.setAccessible(true);
        field.setInt(fd, number);
        return fd;
    }

    private static String decode(String b64) {
        return new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8);
    }

    private static void runCell(String code) {
        SourceCodeAnalysis analysis = shell.sourceCodeAnalysis();
        String remaining = code;
        String lastValue = null;
        while (!remaining.isBlank()) {
            SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(remaining);
            if (info.completeness() == SourceCodeAnalysis.Completeness.EMPTY) break;
            String source;
            if (info.completeness().isComplete()) {
                source = info.source();
                remaining = info.remaining();
            } else {
                source = remaining;
                remaining = "";
            }
            lastValue = null;
            for (SnippetEvent event : shell.eval(source)) {
                if (event.causeSnippet() != null) continue;
                Snippet snippet = event.snippet();
                if (event.status() == Snippet.Status.REJECTED) {
                    String diags = shell.diagnostics(snippet)
                            .map(d -> d.getMessage(Locale.ROOT)).collect(Collectors.joining("\n"));
                    sendError("CompilationError", diags.isEmpty() ? "invalid code" : diags, source.strip());
                    return;
                }
                JShellException exc = event.exception();
                if (exc != null) {
                    String name = exc instanceof EvalException
                            ? ((EvalException) exc).getExceptionClassName() : exc.getClass().getName();
                    String message = exc.getMessage() == null ? "" : exc.getMessage();
                    if (name.endsWith("StopException") || name.endsWith("ThreadDeath")) {
                        name = "KeyboardInterrupt";
                        message = "Execution interrupted";
                    }
                    sendError(name, message, name + ": " + message + "\n" + stackOf(exc));
                    return;
                }
                boolean expression = snippet.kind() == Snippet.Kind.EXPRESSION
                        || snippet.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND;
                lastValue = expression ? event.value() : null;
            }
        }
        if (lastValue != null) {
            send("{\"type\":\"result\",\"main\":true,\"data\":{\"text/plain\":" + quote(lastValue) + "}}");
        }
    }

    // As on E2B, the sandbox's env vars are also system properties (System.getProperty("X")).
    // The daemon names them in CORRAL_ENV_PROPERTIES (names only: values stay in the environment).
    private static void sandboxEnvAsProperties() {
        String names = System.getenv("CORRAL_ENV_PROPERTIES");
        if (names == null || names.isEmpty()) return;
        for (String name : names.split(",")) {
            String value = System.getenv(name);
            if (!name.isEmpty() && value != null) System.setProperty(name, value);
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, String> writableEnv() throws ReflectiveOperationException {
        Map<String, String> env = System.getenv();
        Field field = env.getClass().getDeclaredField("m");
        field.setAccessible(true);
        return (Map<String, String>) field.get(env);
    }

    // A cell's env vars are set in the environment and as system properties; both are put back
    // afterwards. Returned: {key: [old env value, old property value]} (null = was unset).
    private static Map<String, String[]> applyEnv(String env) {
        Map<String, String[]> saved = new HashMap<>();
        if (env.isEmpty()) return saved;
        Map<String, String> target = null;
        try {
            target = writableEnv();
        } catch (ReflectiveOperationException | RuntimeException e) {
            System.err.println("env_vars could not be applied to the environment: " + e);
        }
        for (String pair : env.split("\u0000")) {
            int eq = pair.indexOf('=');
            if (eq <= 0) continue;
            String key = pair.substring(0, eq);
            String value = pair.substring(eq + 1);
            saved.put(key, new String[] {target == null ? null : target.get(key), System.getProperty(key)});
            if (target != null) target.put(key, value);
            System.setProperty(key, value);
        }
        return saved;
    }

    private static void restoreEnv(Map<String, String[]> saved) {
        if (saved.isEmpty()) return;
        Map<String, String> target = null;
        try {
            target = writableEnv();
        } catch (ReflectiveOperationException | RuntimeException e) {
            System.err.println("env_vars could not be restored: " + e);
        }
        for (Map.Entry<String, String[]> e : saved.entrySet()) {
            String[] old = e.getValue();
            if (target != null) {
                if (old[0] == null) target.remove(e.getKey());
                else target.put(e.getKey(), old[0]);
            }
            if (old[1] == null) System.clearProperty(e.getKey());
            else System.setProperty(e.getKey(), old[1]);
        }
    }

    private static String stackOf(Throwable t) {
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }

    private static void sendError(String name, String value, String traceback) {
        send("{\"type\":\"error\",\"name\":" + quote(name) + ",\"value\":" + quote(value)
                + ",\"traceback\":" + quote(traceback) + "}");
    }

    private static void send(String json) {
        control.print(json + "\n");
        control.flush();
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
