/*
 * secroom-pam-card: the helper pam_exec runs once per log-on, after the password check (C).
 *
 * The same helper as controller/host/pam_client.py (the documented fallback), with the same
 * arguments, request line, answers and exit codes, compiled so that a log-on does not wait
 * for an interpreter to start. It asks the host agent over its Unix socket whether this card
 * may log on here now ("card") or tells it that the password failed ("password_failed"),
 * and exits 0 (PAM_SUCCESS) only if the agent answers "ok". The agent learns who asks from
 * the socket (SO_PEERCRED), not from anything this helper says.
 *
 * Usage: secroom-pam-card card|password_failed [--socket PATH] [--timeout SECONDS]
 * pam_exec puts PAM_USER, PAM_SERVICE, PAM_TTY, PAM_RHOST and PAM_RUSER in the environment.
 * Request: "v1\t<step>\t<user>\t<service>\t<tty>\t<rhost>\t<ruser>\n".
 * Answer: "ok" or "no <reason>", one line.
 * Exit codes: 0 granted / noted, 1 denied, 2 the agent is unreachable, slow or answered
 * garbage, 3 bad usage or a PAM item holding a tab or a line break. It fails closed: every
 * error, a timeout (also a hard alarm that kills it) or an unknown answer is not 0.
 * It prints nothing but a usage line or a generic error (never a PAM item, never an answer).
 *
 * Build: hardware/host-agent/build-pam-helper.sh (gcc, libc only).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/secroom/host-agent.sock"
#define DEFAULT_TIMEOUT_S 40.0 /* above the agent's longest card wait (30 s) */
#define MAX_ANSWER 1024
#define MAX_REQUEST 4096

enum { EXIT_GRANTED = 0, EXIT_DENIED = 1, EXIT_AGENT = 2, EXIT_USAGE = 3 };

static const char *const ITEMS[] = {"PAM_USER", "PAM_SERVICE", "PAM_TTY", "PAM_RHOST",
                                    "PAM_RUSER"};

static int usage(void) {
    static const char msg[] =
        "usage: secroom-pam-card card|password_failed [--socket PATH] [--timeout SECONDS]\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    return EXIT_USAGE;
}

static int agent_error(const char *what, int err) {
    /* generic: the step, the errno text; never a PAM item nor the agent's answer */
    fprintf(stderr, "secroom-pam-card: the host agent cannot be asked (%s: %s)\n", what,
            err ? strerror(err) : "bad answer");
    return EXIT_AGENT;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The request line in buf; -1 if a PAM item holds a tab or a line break, -2 if too long. */
static int request_line(const char *step, char *buf, size_t size) {
    size_t n = 0;
    const char *parts[7] = {"v1", step, NULL, NULL, NULL, NULL, NULL};
    for (int i = 0; i < 5; i++) {
        const char *v = getenv(ITEMS[i]);
        v = v ? v : "";
        if (strpbrk(v, "\t\n\r") != NULL)
            return -1;
        parts[i + 2] = v;
    }
    for (int i = 0; i < 7; i++) {
        size_t len = strlen(parts[i]);
        if (n + len + 2 > size)
            return -2;
        memcpy(buf + n, parts[i], len);
        n += len;
        buf[n++] = i == 6 ? '\n' : '\t';
    }
    return (int)n;
}

static int wait_for(int fd, short events, double deadline) {
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0)
            return 0;
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int ask(const char *path, const char *line, size_t len, double timeout_s) {
    double deadline = now_s() + timeout_s;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return agent_error("socket path", ENAMETOOLONG);
    strcpy(addr.sun_path, path);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return agent_error("socket", errno);
    /* connect on a Unix socket waits only while the agent's backlog is full: bound it */
    struct timeval tv = {.tv_sec = (time_t)timeout_s,
                         .tv_usec = (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int err = errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
        close(fd);
        return agent_error("connect", err);
    }
    for (size_t sent = 0; sent < len;) {
        if (wait_for(fd, POLLOUT, deadline) != 0) {
            int err = errno;
            close(fd);
            return agent_error("send", err);
        }
        ssize_t w = send(fd, line + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            int err = errno;
            close(fd);
            return agent_error("send", err);
        }
        sent += (size_t)w;
    }
    /* as the Python helper: read until a line break, the end, or 1024 bytes */
    char data[2 * MAX_ANSWER + 1];
    size_t got = 0;
    while (got < MAX_ANSWER && !(got > 0 && data[got - 1] == '\n')) {
        if (wait_for(fd, POLLIN, deadline) != 0) {
            int err = errno;
            close(fd);
            return agent_error("answer", err);
        }
        ssize_t r = recv(fd, data + got, MAX_ANSWER, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            int err = errno;
            close(fd);
            return agent_error("answer", err);
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    size_t start = 0, end = got;
    while (start < end && is_space(data[start]))
        start++;
    while (end > start && is_space(data[end - 1]))
        end--;
    size_t n = end - start;
    if (n == 2 && memcmp(data + start, "ok", 2) == 0)
        return EXIT_GRANTED;
    if (n >= 2 && memcmp(data + start, "no", 2) == 0)
        return EXIT_DENIED;
    return agent_error("answer", 0);
}

int main(int argc, char **argv) {
    const char *path = DEFAULT_SOCKET;
    const char *step = NULL;
    double timeout_s = DEFAULT_TIMEOUT_S;
    int steps = 0, sockets = 0, timeouts = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--socket") == 0 && sockets++ == 0) {
            if (i + 1 >= argc)
                return usage();
            path = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && timeouts++ == 0) {
            char *end = NULL;
            if (i + 1 >= argc)
                return usage();
            timeout_s = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || !(timeout_s > 0 && timeout_s <= 600))
                return usage();
        } else {
            step = argv[i];
            steps++;
        }
    }
    if (steps != 1 || (strcmp(step, "card") != 0 && strcmp(step, "password_failed") != 0))
        return usage();
    /* a hard stop above the timeout: killed by SIGALRM is a failure for pam_exec too */
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)timeout_s + 2);

    char line[MAX_REQUEST];
    int len = request_line(step, line, sizeof line);
    if (len < 0)
        return EXIT_USAGE;
    return ask(path, line, (size_t)len, timeout_s);
}
