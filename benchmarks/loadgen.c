/*
 * loadgen: the SMTP load generator and sinks of mailseal's benchmarks (issue #7).
 *
 *   loadgen send  ...   N concurrent sessions, M messages, K per session, plain /
 *                       STARTTLS / implicit TLS, AUTH PLAIN, TLS resumption on/off;
 *                       prints ONE JSON line: msgs/s, handshakes/s, transaction and
 *                       session latency p50/p99, failures, its own CPU time.
 *   loadgen sink  ...   a cheap SMTP sink (plain, STARTTLS or implicit TLS) that
 *                       accepts everything; with --expect N it exits once N messages
 *                       arrived and prints one JSON line (first/last arrival times).
 *   loadgen idle  ...   holds N connections open after their 220 greeting and
 *                       measures how long a new client then waits for its 220.
 *
 * Design: one process, epoll (edge-triggered, EPOLLIN|EPOLLOUT registered once per
 * socket), non-blocking OpenSSL; `-j T` runs T threads, each with its own epoll, its
 * own share of the sessions and its own SSL_CTX. One command at a time, as typical
 * clients (no PIPELINING); the message is generated once in memory and sent with one
 * write loop. Build: cc -O2 -o loadgen loadgen.c -lssl -lcrypto -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define INBUF 16384
#define MAXEV 512

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void raise_nofile(void) {
    /* The idle test holds thousands of sockets: take the whole hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void cpu_times(double *user, double *sys) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---------------------------------------------------------------- latency arrays */

typedef struct {
    float *v;
    size_t n, cap;
} samples_t;

static void push(samples_t *s, double ms) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof(float));
        if (!s->v) die("out of memory");
    }
    s->v[s->n++] = (float)ms;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array; -1 when empty (JSON readers see "none"). */
static double pct(const samples_t *s, double p) {
    if (s->n == 0) return -1;
    size_t rank = (size_t)(p / 100.0 * s->n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > s->n) rank = s->n;
    return s->v[rank - 1];
}

/* ---------------------------------------------------------------- plain/TLS I/O */

/* Result of one I/O attempt: bytes moved (>0), or one of these. */
enum { IO_AGAIN = -1, IO_EOF = -2, IO_ERR = -3 };

static long io_read(int fd, SSL *ssl, char *buf, size_t len) {
    if (ssl) {
        int r = SSL_read(ssl, buf, (int)len);
        if (r > 0) return r;
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return IO_AGAIN;
        if (e == SSL_ERROR_ZERO_RETURN) return IO_EOF;
        return IO_ERR;
    }
    ssize_t r = read(fd, buf, len);
    if (r > 0) return r;
    if (r == 0) return IO_EOF;
    return (errno == EAGAIN || errno == EINTR) ? IO_AGAIN : IO_ERR;
}

static long io_write(int fd, SSL *ssl, const char *buf, size_t len) {
    if (ssl) {
        /* OpenSSL takes an int; big messages go out in 1 MiB slices. */
        int chunk = len > (1 << 20) ? (1 << 20) : (int)len;
        int r = SSL_write(ssl, buf, chunk);
        if (r > 0) return r;
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return IO_AGAIN;
        return IO_ERR;
    }
    ssize_t r = send(fd, buf, len, MSG_NOSIGNAL);
    if (r >= 0) return r;
    return (errno == EAGAIN || errno == EINTR) ? IO_AGAIN : IO_ERR;
}

/* A complete SMTP reply at the start of buf: its code, and *used = bytes consumed. */
static int parse_reply(const char *buf, size_t len, size_t *used) {
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) return 0;
        size_t linelen = (size_t)(nl - (buf + pos)) + 1;
        const char *line = buf + pos;
        pos += linelen;
        if (linelen < 4 || line[3] != '-') {
            *used = pos;
            if (linelen < 4) return -1;
            return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        }
    }
    return 0;
}

static int make_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    return fd;
}

static void set_sockopts(int fd, int nodelay, int quickack) {
    int one = 1;
    if (nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (quickack) setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

/* ================================================================== send (client) */

enum mode { MODE_PLAIN, MODE_STARTTLS, MODE_TLS };
static const char *mode_names[] = {"plain", "starttls", "tls"};

static struct {
    struct sockaddr_in addr;
    enum mode mode;
    int conc, per_session, threads, resume, nodelay, quickack;
    long total;
    double duration, timeout;
    size_t size;
    char *msg;
    size_t msglen;
    char auth_line[512];
    char mail_line[256], rcpt_line[256], ehlo_line[256];
} C;

/* Messages not yet claimed by a session; time_up ends claiming in duration mode. */
static atomic_long remaining;
static double t_stop_claims;
/* Session failures before no new session starts: a wrong password must not spin forever. */
static atomic_long failures;
static long max_failures = 1000;

enum step { S_BANNER, S_EHLO, S_STARTTLS, S_AUTH, S_MAIL, S_RCPT, S_DATA, S_BODY, S_QUIT };
enum io { IO_CONNECTING, IO_HANDSHAKE, IO_WRITING, IO_READING };
enum err { E_CONNECT, E_TLS, E_REPLY, E_TIMEOUT, E_EOF, E_IO, E_COUNT };
static const char *err_names[] = {"connect", "tls", "reply", "timeout", "eof", "io"};

struct thread;

typedef struct conn {
    struct thread *th;
    int fd;
    SSL *ssl;
    int active, tls_done, msgs;
    enum step step;
    enum io io;
    const char *out;
    size_t outlen, outoff;
    char cmd[600];
    char in[INBUF];
    size_t inlen;
    double t_session, t_txn, deadline;
} conn_t;

typedef struct thread {
    pthread_t tid;
    int ep, nconn, live;
    conn_t *conns;
    SSL_CTX *ctx;
    SSL_SESSION *sess;
    samples_t txn, session;
    long ok, failed, sessions_ok, sessions_failed, handshakes, resumed;
    long errors[E_COUNT];
    char first_error[200];
} thread_t;

static int new_session_cb(SSL *ssl, SSL_SESSION *sess) {
    /* Keep the newest ticket/session of this thread for the next handshake. */
    thread_t *th = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (th->sess) SSL_SESSION_free(th->sess);
    th->sess = sess;
    return 1;
}

static int stopping(void) {
    return now_mono() >= t_stop_claims || atomic_load(&failures) >= max_failures;
}

static int claim(void) {
    if (stopping()) return 0;
    long left = atomic_fetch_sub(&remaining, 1);
    return left > 0;
}

static void start_session(conn_t *c);
static void drive(conn_t *c);

static void close_conn(conn_t *c) {
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static void fail(conn_t *c, enum err kind, const char *detail) {
    thread_t *th = c->th;
    th->errors[kind]++;
    if (!th->first_error[0])
        snprintf(th->first_error, sizeof th->first_error, "%s at step %d: %s", err_names[kind],
                 c->step, detail);
    if (c->step >= S_MAIL && c->step <= S_BODY) th->failed++;
    th->sessions_failed++;
    atomic_fetch_add(&failures, 1);
    close_conn(c);
    start_session(c);
}

static void send_cmd(conn_t *c, enum step next, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->cmd, sizeof c->cmd, fmt, ap);
    va_end(ap);
    c->out = c->cmd;
    c->outlen = (size_t)n;
    c->outoff = 0;
    c->step = next;
    c->io = IO_WRITING;
}

static void send_body(conn_t *c) {
    c->out = C.msg;
    c->outlen = C.msglen;
    c->outoff = 0;
    c->step = S_BODY;
    c->io = IO_WRITING;
}

static void next_message(conn_t *c) {
    if (c->msgs < C.per_session && claim()) {
        c->t_txn = now_mono();
        send_cmd(c, S_MAIL, "%s", C.mail_line);
    } else {
        send_cmd(c, S_QUIT, "QUIT\r\n");
    }
}

static void start_tls(conn_t *c) {
    c->ssl = SSL_new(c->th->ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    if (C.resume && c->th->sess) SSL_set_session(c->ssl, c->th->sess);
    c->io = IO_HANDSHAKE;
}

/* A whole reply arrived: decide the next command (one at a time, no pipelining). */
static void on_reply(conn_t *c, int code) {
    thread_t *th = c->th;
    int want = c->step == S_BANNER || c->step == S_STARTTLS ? 220
               : c->step == S_AUTH                         ? 235
               : c->step == S_DATA                         ? 354
               : c->step == S_QUIT                         ? 221
                                                           : 250;
    if (code != want) {
        char detail[80];
        snprintf(detail, sizeof detail, "reply %d, wanted %d", code, want);
        fail(c, E_REPLY, detail);
        return;
    }
    switch (c->step) {
    case S_BANNER:
        send_cmd(c, S_EHLO, "%s", C.ehlo_line);
        break;
    case S_EHLO:
        if (C.mode == MODE_STARTTLS && !c->tls_done)
            send_cmd(c, S_STARTTLS, "STARTTLS\r\n");
        else if (C.auth_line[0])
            send_cmd(c, S_AUTH, "%s", C.auth_line);
        else
            next_message(c);
        break;
    case S_STARTTLS:
        c->inlen = 0; /* nothing may follow the 220 in plaintext */
        start_tls(c);
        break;
    case S_AUTH:
        next_message(c);
        break;
    case S_MAIL:
        send_cmd(c, S_RCPT, "%s", C.rcpt_line);
        break;
    case S_RCPT:
        send_cmd(c, S_DATA, "DATA\r\n");
        break;
    case S_DATA:
        send_body(c);
        break;
    case S_BODY:
        push(&th->txn, (now_mono() - c->t_txn) * 1000.0);
        th->ok++;
        c->msgs++;
        next_message(c);
        break;
    case S_QUIT:
        push(&th->session, (now_mono() - c->t_session) * 1000.0);
        th->sessions_ok++;
        /* close_notify, as a well-behaved client sends: OpenSSL marks the session of a
           connection freed without it "not resumable", which would void the ticket
           this thread keeps for resumption. One non-blocking attempt is enough. */
        if (c->ssl) SSL_shutdown(c->ssl);
        close_conn(c);
        start_session(c);
        break;
    }
}

static void after_handshake(conn_t *c) {
    thread_t *th = c->th;
    th->handshakes++;
    if (SSL_session_reused(c->ssl)) th->resumed++;
    c->tls_done = 1;
    if (C.mode == MODE_TLS) {
        c->step = S_BANNER;
        c->io = IO_READING;
    } else {
        send_cmd(c, S_EHLO, "%s", C.ehlo_line);
    }
}

static void start_session(conn_t *c) {
    thread_t *th = c->th;
    /* A new session only when a message is left to send (peek, the claim comes later). */
    if (stopping() || atomic_load(&remaining) <= 0) {
        if (c->active) {
            c->active = 0;
            th->live--;
        }
        return;
    }
    c->fd = make_socket();
    if (c->fd < 0) die("socket: %s", strerror(errno));
    set_sockopts(c->fd, C.nodelay, C.quickack);
    c->ssl = NULL;
    c->tls_done = 0;
    c->msgs = 0;
    c->inlen = 0;
    c->step = S_BANNER;
    c->t_session = now_mono();
    c->deadline = c->t_session + C.timeout;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
    if (connect(c->fd, (struct sockaddr *)&C.addr, sizeof C.addr) < 0 && errno != EINPROGRESS) {
        th->errors[E_CONNECT]++;
        th->sessions_failed++;
        close(c->fd);
        c->fd = -1;
        c->active = 0;
        th->live--;
        return;
    }
    c->io = IO_CONNECTING;
    epoll_ctl(th->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Make all the progress possible until the socket would block. */
static void drive(conn_t *c) {
    for (;;) {
        if (c->fd < 0) return;
        int fd = c->fd;
        c->deadline = now_mono() + C.timeout;
        switch (c->io) {
        case IO_CONNECTING: {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err == EINPROGRESS || err == EALREADY) return;
            if (err) {
                fail(c, E_CONNECT, strerror(err));
                return;
            }
            /* Still connecting and no error: only an EPOLLOUT edge tells. */
            struct sockaddr_in peer;
            socklen_t plen = sizeof peer;
            if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0) return;
            if (C.mode == MODE_TLS)
                start_tls(c);
            else
                c->io = IO_READING;
            break;
        }
        case IO_HANDSHAKE: {
            int r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                after_handshake(c);
                break;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            char detail[120];
            ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
            ERR_clear_error();
            fail(c, E_TLS, detail);
            return;
        }
        case IO_WRITING: {
            long n = io_write(fd, c->ssl, c->out + c->outoff, c->outlen - c->outoff);
            if (n == IO_AGAIN) return;
            if (n < 0) {
                fail(c, E_IO, "write failed");
                return;
            }
            c->outoff += (size_t)n;
            if (c->outoff == c->outlen) c->io = IO_READING;
            break;
        }
        case IO_READING: {
            size_t used = 0;
            int code = parse_reply(c->in, c->inlen, &used);
            if (code != 0) {
                memmove(c->in, c->in + used, c->inlen - used);
                c->inlen -= used;
                on_reply(c, code);
                break;
            }
            if (c->inlen == sizeof c->in) {
                fail(c, E_REPLY, "reply too long");
                return;
            }
            long n = io_read(fd, c->ssl, c->in + c->inlen, sizeof c->in - c->inlen);
            if (n == IO_AGAIN) return;
            if (n == IO_EOF) {
                fail(c, E_EOF, "connection closed");
                return;
            }
            if (n < 0) {
                fail(c, E_IO, "read failed");
                return;
            }
            c->inlen += (size_t)n;
            break;
        }
        }
    }
}

static void *send_thread(void *arg) {
    thread_t *th = arg;
    th->ep = epoll_create1(EPOLL_CLOEXEC);
    th->live = th->nconn;
    for (int i = 0; i < th->nconn; i++) {
        th->conns[i].th = th;
        th->conns[i].fd = -1;
        th->conns[i].active = 1;
        start_session(&th->conns[i]);
    }
    struct epoll_event evs[MAXEV];
    double next_check = now_mono() + 0.1;
    while (th->live > 0) {
        int n = epoll_wait(th->ep, evs, MAXEV, 100);
        for (int i = 0; i < n; i++) drive(evs[i].data.ptr);
        double now = now_mono();
        if (now >= next_check) {
            next_check = now + 0.1;
            for (int i = 0; i < th->nconn; i++) {
                conn_t *c = &th->conns[i];
                if (c->fd >= 0 && now > c->deadline) fail(c, E_TIMEOUT, "no progress");
            }
        }
    }
    close(th->ep);
    return NULL;
}

static void build_message(size_t size) {
    /* Headers, then 76-character text lines up to `size`; no line starts with '.'. */
    const char *head =
        "From: <bench@loadgen.test>\r\nTo: <%s>\r\nSubject: loadgen benchmark message\r\n"
        "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <bench@loadgen.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
    C.msg = malloc(size + 4096);
    if (!C.msg) die("out of memory for a %zu byte message", size);
    size_t n = (size_t)sprintf(C.msg, head, "postmaster@example.test");
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789 ";
    unsigned x = 12345;
    while (n + 78 <= size) {
        for (int i = 0; i < 76; i++) {
            x = x * 1103515245u + 12345u;
            C.msg[n++] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        C.msg[n++] = '\r';
        C.msg[n++] = '\n';
    }
    memcpy(C.msg + n, ".\r\n", 3);
    C.msglen = n + 3;
}

static void b64(const unsigned char *in, size_t len, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = in[i] << 16 | (i + 1 < len ? in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? t[v & 63] : '=';
    }
    out[o] = 0;
}

static void parse_addr(const char *hostport, struct sockaddr_in *addr) {
    char host[64];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host) die("bad address %s", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1) die("bad IPv4 address %s", host);
}

static size_t parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K') v *= 1024;
    if (*end == 'm' || *end == 'M') v *= 1024 * 1024;
    return (size_t)v;
}

static SSL_CTX *client_ctx(thread_t *th) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* loopback benchmark: no PKI */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    SSL_CTX_set_app_data(ctx, th);
    return ctx;
}

static void merge(samples_t *into, const samples_t *from) {
    for (size_t i = 0; i < from->n; i++) push(into, from->v[i]);
}

static void usage_send(void) {
    fprintf(stderr,
            "usage: loadgen send -a HOST:PORT [-m plain|starttls|tls] [-c CONC] [-n TOTAL]\n"
            "       [-k PER_SESSION] [-s SIZE[k|m]] [-t SECONDS] [-u USER:PASS] [-r] [-j THREADS]\n"
            "       [--timeout S] [--rcpt ADDR] [--quickack] [--no-nodelay] [--max-failures F]\n");
    exit(2);
}

static int cmd_send(int argc, char **argv) {
    C.mode = MODE_PLAIN;
    C.conc = 1;
    C.total = 1000;
    C.per_session = 1;
    C.threads = 1;
    C.size = 4096;
    C.duration = 0;
    C.timeout = 30;
    C.nodelay = 1;
    const char *rcpt = "postmaster@example.test", *addr = NULL, *auth = NULL;
    static struct option longopts[] = {{"timeout", required_argument, 0, 1},
                                       {"rcpt", required_argument, 0, 2},
                                       {"quickack", no_argument, 0, 3},
                                       {"no-nodelay", no_argument, 0, 4},
                                       {"max-failures", required_argument, 0, 5},
                                       {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "a:m:c:n:k:s:t:u:rj:h", longopts, NULL)) != -1) {
        switch (o) {
        case 'a': addr = optarg; break;
        case 'm':
            if (!strcmp(optarg, "plain")) C.mode = MODE_PLAIN;
            else if (!strcmp(optarg, "starttls")) C.mode = MODE_STARTTLS;
            else if (!strcmp(optarg, "tls")) C.mode = MODE_TLS;
            else usage_send();
            break;
        case 'c': C.conc = atoi(optarg); break;
        case 'n': C.total = atol(optarg); break;
        case 'k': C.per_session = atoi(optarg); break;
        case 's': C.size = parse_size(optarg); break;
        case 't': C.duration = atof(optarg); break;
        case 'u': auth = optarg; break;
        case 'r': C.resume = 1; break;
        case 'j': C.threads = atoi(optarg); break;
        case 1: C.timeout = atof(optarg); break;
        case 2: rcpt = optarg; break;
        case 3: C.quickack = 1; break;
        case 4: C.nodelay = 0; break;
        case 5: max_failures = atol(optarg); break;
        default: usage_send();
        }
    }
    if (!addr || C.conc < 1 || C.per_session < 1 || C.threads < 1 || C.total < 1) usage_send();
    if (C.threads > C.conc) C.threads = C.conc;
    parse_addr(addr, &C.addr);
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    build_message(C.size);
    snprintf(C.ehlo_line, sizeof C.ehlo_line, "EHLO loadgen.test\r\n");
    snprintf(C.mail_line, sizeof C.mail_line, "MAIL FROM:<bench@loadgen.test>\r\n");
    snprintf(C.rcpt_line, sizeof C.rcpt_line, "RCPT TO:<%s>\r\n", rcpt);
    if (auth) {
        /* AUTH PLAIN with the initial response: "\0user\0password" in base64. */
        const char *colon = strchr(auth, ':');
        if (!colon) usage_send();
        unsigned char raw[256];
        size_t ulen = (size_t)(colon - auth), plen = strlen(colon + 1);
        if (ulen + plen + 2 > sizeof raw) die("credentials too long");
        raw[0] = 0;
        memcpy(raw + 1, auth, ulen);
        raw[1 + ulen] = 0;
        memcpy(raw + 2 + ulen, colon + 1, plen);
        char enc[400];
        b64(raw, ulen + plen + 2, enc);
        snprintf(C.auth_line, sizeof C.auth_line, "AUTH PLAIN %s\r\n", enc);
    }
    atomic_store(&remaining, C.total);
    thread_t *ths = calloc((size_t)C.threads, sizeof *ths);
    double t0 = now_mono();
    t_stop_claims = C.duration > 0 ? t0 + C.duration : 1e300;
    for (int t = 0; t < C.threads; t++) {
        thread_t *th = &ths[t];
        th->nconn = C.conc / C.threads + (t < C.conc % C.threads);
        th->conns = calloc((size_t)th->nconn, sizeof(conn_t));
        th->ctx = client_ctx(th);
        pthread_create(&th->tid, NULL, send_thread, th);
    }
    thread_t all = {0};
    for (int t = 0; t < C.threads; t++) {
        thread_t *th = &ths[t];
        pthread_join(th->tid, NULL);
        merge(&all.txn, &th->txn);
        merge(&all.session, &th->session);
        all.ok += th->ok;
        all.failed += th->failed;
        all.sessions_ok += th->sessions_ok;
        all.sessions_failed += th->sessions_failed;
        all.handshakes += th->handshakes;
        all.resumed += th->resumed;
        for (int e = 0; e < E_COUNT; e++) all.errors[e] += th->errors[e];
        if (!all.first_error[0]) memcpy(all.first_error, th->first_error, sizeof all.first_error);
    }
    double elapsed = now_mono() - t0, user, sys;
    cpu_times(&user, &sys);
    qsort(all.txn.v, all.txn.n, sizeof(float), cmp_float);
    qsort(all.session.v, all.session.n, sizeof(float), cmp_float);
    for (char *p = all.first_error; *p; p++)
        if (*p == '"' || *p == '\\') *p = '\'';
    printf("{\"mode\": \"%s\", \"concurrency\": %d, \"per_session\": %d, \"size\": %zu, "
           "\"resume\": %s, \"auth\": %s, \"threads\": %d, \"elapsed_s\": %.4f, "
           "\"messages_ok\": %ld, \"messages_failed\": %ld, \"sessions_ok\": %ld, "
           "\"sessions_failed\": %ld, \"handshakes\": %ld, \"resumed\": %ld, "
           "\"msgs_per_s\": %.2f, \"handshakes_per_s\": %.2f, "
           "\"txn_p50_ms\": %.3f, \"txn_p99_ms\": %.3f, \"session_p50_ms\": %.3f, "
           "\"session_p99_ms\": %.3f, \"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f, \"errors\": {",
           mode_names[C.mode], C.conc, C.per_session, C.size, C.resume ? "true" : "false",
           C.auth_line[0] ? "true" : "false", C.threads, elapsed, all.ok, all.failed,
           all.sessions_ok, all.sessions_failed, all.handshakes, all.resumed, all.ok / elapsed,
           all.handshakes / elapsed, pct(&all.txn, 50), pct(&all.txn, 99),
           pct(&all.session, 50), pct(&all.session, 99), user, sys);
    for (int e = 0; e < E_COUNT; e++)
        printf("%s\"%s\": %ld", e ? ", " : "", err_names[e], all.errors[e]);
    printf("}, \"first_error\": \"%s\"}\n", all.first_error);
    return all.failed || all.sessions_failed ? 1 : 0;
}

/* ==================================================================== sink (server) */

static struct {
    int tls_mode; /* 0 plain, 1 STARTTLS offered, 2 implicit */
    long expect;
    double max_time;
    SSL_CTX *ctx;
} S;

enum sstate { SS_HANDSHAKE, SS_CMD, SS_DATA, SS_AUTH, SS_CLOSING };

typedef struct sconn {
    int fd;
    SSL *ssl;
    enum sstate st;
    int kmp; /* how much of "\r\n.\r\n" has been seen in DATA */
    int close_after_flush, starttls_after_flush;
    char in[INBUF];
    size_t inlen;
    char out[4096];
    size_t outlen, outoff;
} sconn_t;

static struct {
    long messages, connections, handshakes, resumed;
    double first_msg, last_msg, t0;
} SST;
static volatile sig_atomic_t sink_stop;

static void sink_on_signal(int sig) {
    (void)sig;
    sink_stop = 1;
}

static void sink_print(void) {
    double user, sys;
    cpu_times(&user, &sys);
    printf("{\"messages\": %ld, \"connections\": %ld, \"handshakes\": %ld, \"resumed\": %ld, "
           "\"first_msg_wall\": %.6f, \"last_msg_wall\": %.6f, \"elapsed_s\": %.4f, "
           "\"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f}\n",
           SST.messages, SST.connections, SST.handshakes, SST.resumed, SST.first_msg,
           SST.last_msg, now_mono() - SST.t0, user, sys);
    fflush(stdout);
}

static void sreply(sconn_t *c, const char *text) {
    size_t n = strlen(text);
    if (c->outlen + n > sizeof c->out) return; /* a flood of pipelined junk: drop */
    memcpy(c->out + c->outlen, text, n);
    c->outlen += n;
}

static void sclose(int ep, sconn_t *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) SSL_free(c->ssl);
    close(c->fd);
    free(c);
}

static void sink_message_done(void) {
    double t = now_wall();
    if (SST.messages == 0) SST.first_msg = t;
    SST.last_msg = t;
    SST.messages++;
    /* Report as soon as the expected count is in, but keep serving: the senders'
       QUITs still deserve their 221 until the runner stops us. */
    if (S.expect > 0 && SST.messages == S.expect) sink_print();
}

/* Scan DATA bytes for the end "\r\n.\r\n" (a KMP matcher that survives read boundaries). */
static size_t sink_data(sconn_t *c, const char *p, size_t len) {
    static const char pat[] = "\r\n.\r\n";
    static const int fail_tab[] = {0, 0, 0, 1, 2};
    for (size_t i = 0; i < len; i++) {
        while (c->kmp > 0 && pat[c->kmp] != p[i]) c->kmp = fail_tab[c->kmp - 1];
        if (pat[c->kmp] == p[i]) c->kmp++;
        if (c->kmp == 5) {
            sreply(c, "250 2.0.0 Ok: queued as SINK\r\n");
            sink_message_done();
            c->st = SS_CMD;
            return i + 1;
        }
    }
    return len;
}

static void sink_command(sconn_t *c, const char *line, size_t len) {
    if (c->st == SS_AUTH) { /* the AUTH response line */
        sreply(c, "235 2.7.0 Authentication successful\r\n");
        c->st = SS_CMD;
        return;
    }
    if (len >= 4 && (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "HELO", 4))) {
        sreply(c, "250-sink.test\r\n250-PIPELINING\r\n250-SIZE 209715200\r\n250-8BITMIME\r\n");
        if (S.tls_mode == 1 && !c->ssl) sreply(c, "250-STARTTLS\r\n");
        sreply(c, "250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n");
    } else if (len >= 8 && !strncasecmp(line, "STARTTLS", 8) && S.tls_mode == 1 && !c->ssl) {
        sreply(c, "220 2.0.0 Ready to start TLS\r\n");
        c->starttls_after_flush = 1;
    } else if (len >= 4 && !strncasecmp(line, "AUTH", 4)) {
        /* "AUTH PLAIN <initial response>" has two words after AUTH; else ask for it. */
        int spaces = 0;
        for (size_t i = 0; i < len; i++) spaces += line[i] == ' ';
        if (spaces >= 2) {
            sreply(c, "235 2.7.0 Authentication successful\r\n");
        } else {
            sreply(c, "334 \r\n");
            c->st = SS_AUTH;
        }
    } else if (len >= 4 && !strncasecmp(line, "MAIL", 4)) {
        sreply(c, "250 2.1.0 Ok\r\n");
    } else if (len >= 4 && !strncasecmp(line, "RCPT", 4)) {
        sreply(c, "250 2.1.5 Ok\r\n");
    } else if (len >= 4 && !strncasecmp(line, "DATA", 4)) {
        sreply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
        c->st = SS_DATA;
        c->kmp = 2; /* DATA starts at the beginning of a line */
    } else if (len >= 4 && (!strncasecmp(line, "RSET", 4) || !strncasecmp(line, "NOOP", 4))) {
        sreply(c, "250 2.0.0 Ok\r\n");
    } else if (len >= 4 && !strncasecmp(line, "QUIT", 4)) {
        sreply(c, "221 2.0.0 Bye\r\n");
        c->close_after_flush = 1;
    } else {
        sreply(c, "502 5.5.2 Error: command not recognized\r\n");
    }
}

static void sink_begin_tls(sconn_t *c) {
    c->ssl = SSL_new(S.ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_accept_state(c->ssl);
    c->st = SS_HANDSHAKE;
    c->inlen = 0;
}

/* Returns 0 when the connection is to be closed. */
static int sink_drive(sconn_t *c) {
    for (;;) {
        if (c->outoff < c->outlen) {
            long n = io_write(c->fd, c->ssl, c->out + c->outoff, c->outlen - c->outoff);
            if (n == IO_AGAIN) return 1;
            if (n < 0) return 0;
            c->outoff += (size_t)n;
            if (c->outoff < c->outlen) continue;
            c->outoff = c->outlen = 0;
            if (c->close_after_flush) return 0;
            if (c->starttls_after_flush) {
                c->starttls_after_flush = 0;
                sink_begin_tls(c);
            }
        }
        if (c->st == SS_HANDSHAKE) {
            int r = SSL_do_handshake(c->ssl);
            if (r != 1) {
                int e = SSL_get_error(c->ssl, r);
                ERR_clear_error();
                return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
            }
            SST.handshakes++;
            if (SSL_session_reused(c->ssl)) SST.resumed++;
            c->st = SS_CMD;
            if (S.tls_mode == 2) sreply(c, "220 sink.test ESMTP loadgen sink\r\n");
            continue;
        }
        /* Consume what is buffered: commands, or DATA up to its end. */
        size_t pos = 0;
        while (pos < c->inlen && !c->starttls_after_flush && !c->close_after_flush) {
            if (c->st == SS_DATA) {
                pos += sink_data(c, c->in + pos, c->inlen - pos);
                continue;
            }
            char *nl = memchr(c->in + pos, '\n', c->inlen - pos);
            if (!nl) break;
            size_t len = (size_t)(nl - (c->in + pos)) + 1;
            sink_command(c, c->in + pos, len);
            pos += len;
        }
        memmove(c->in, c->in + pos, c->inlen - pos);
        c->inlen -= pos;
        if (c->outlen) continue; /* answer before reading more */
        if (c->inlen == sizeof c->in) c->inlen = 0; /* an endless line: drop it */
        long n = io_read(c->fd, c->ssl, c->in + c->inlen, sizeof c->in - c->inlen);
        if (n == IO_AGAIN) return 1;
        if (n < 0) return 0;
        c->inlen += (size_t)n;
    }
}

static int listen_on(struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) < 0) die("bind: %s", strerror(errno));
    if (listen(fd, 4096) < 0) die("listen: %s", strerror(errno));
    return fd;
}

static int cmd_sink(int argc, char **argv) {
    const char *addr = NULL, *cert = NULL, *key = NULL;
    S.max_time = 3600;
    int o;
    while ((o = getopt(argc, argv, "a:C:K:STe:x:")) != -1) {
        switch (o) {
        case 'a': addr = optarg; break;
        case 'C': cert = optarg; break;
        case 'K': key = optarg; break;
        case 'S': S.tls_mode = 1; break;
        case 'T': S.tls_mode = 2; break;
        case 'e': S.expect = atol(optarg); break;
        case 'x': S.max_time = atof(optarg); break;
        default:
            fprintf(stderr, "usage: loadgen sink -a HOST:PORT [-S (STARTTLS) | -T (implicit TLS)]"
                            " [-C CERT -K KEY] [-e EXPECT] [-x MAX_SECONDS]\n");
            return 2;
        }
    }
    if (!addr || (S.tls_mode && (!cert || !key))) die("sink needs -a, and -C/-K for TLS");
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, sink_on_signal);
    signal(SIGINT, sink_on_signal);
    if (S.tls_mode) {
        S.ctx = SSL_CTX_new(TLS_server_method());
        if (SSL_CTX_use_certificate_chain_file(S.ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(S.ctx, key, SSL_FILETYPE_PEM) != 1)
            die("cannot load %s / %s", cert, key);
        SSL_CTX_set_mode(S.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_session_id_context(S.ctx, (const unsigned char *)"sink", 4);
    }
    struct sockaddr_in sa;
    parse_addr(addr, &sa);
    int lfd = listen_on(&sa);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    SST.t0 = now_mono();
    printf("{\"listening\": \"%s\"}\n", addr);
    fflush(stdout);
    struct epoll_event evs[MAXEV];
    while (!sink_stop && now_mono() - SST.t0 < S.max_time) {
        int n = epoll_wait(ep, evs, MAXEV, 200);
        for (int i = 0; i < n && !sink_stop; i++) {
            if (evs[i].data.ptr == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    set_sockopts(fd, 1, 0);
                    sconn_t *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    SST.connections++;
                    if (S.tls_mode == 2) sink_begin_tls(c);
                    else {
                        c->st = SS_CMD;
                        sreply(c, "220 sink.test ESMTP loadgen sink\r\n");
                    }
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                    if (!sink_drive(c)) sclose(ep, c);
                }
                continue;
            }
            sconn_t *c = evs[i].data.ptr;
            if (!sink_drive(c)) sclose(ep, c);
        }
    }
    sink_print();
    return 0;
}

/* ============================================================ idle (held connections) */

typedef struct {
    int fd, greeted;
    char buf[512];
    size_t len;
} iconn_t;

/* Connect, read the 220; returns the wait in ms, or -1. Blocking, bounded by timeout. */
static double probe_greeting(struct sockaddr_in *addr, double timeout) {
    double t0 = now_mono();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = (long)timeout, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    double result = -1;
    if (connect(fd, (struct sockaddr *)addr, sizeof *addr) == 0) {
        char buf[512];
        size_t len = 0, used;
        while (len < sizeof buf) {
            ssize_t n = read(fd, buf + len, sizeof buf - len);
            if (n <= 0) break;
            len += (size_t)n;
            int code = parse_reply(buf, len, &used);
            if (code) {
                if (code == 220) result = (now_mono() - t0) * 1000.0;
                break;
            }
        }
        if (result >= 0 && write(fd, "QUIT\r\n", 6) < 0) result = -1;
    }
    close(fd);
    return result;
}

static int cmd_idle(int argc, char **argv) {
    const char *addr = NULL;
    int count = 1000, probes = 5, batch = 200;
    double hold = 2, timeout = 60;
    int o;
    while ((o = getopt(argc, argv, "a:c:p:H:b:w:")) != -1) {
        switch (o) {
        case 'a': addr = optarg; break;
        case 'c': count = atoi(optarg); break;
        case 'p': probes = atoi(optarg); break;
        case 'H': hold = atof(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'w': timeout = atof(optarg); break;
        default:
            fprintf(stderr, "usage: loadgen idle -a HOST:PORT [-c CONNECTIONS] [-p PROBES] "
                            "[-H HOLD_SECONDS] [-b CONNECT_BATCH] [-w TIMEOUT]\n");
            return 2;
        }
    }
    if (!addr || count < 1) die("idle needs -a and -c >= 1");
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in sa;
    parse_addr(addr, &sa);
    iconn_t *cs = calloc((size_t)count, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int opened = 0, greeted = 0, failed = 0;
    double t0 = now_mono(), deadline = t0 + timeout;
    struct epoll_event evs[MAXEV];
    /* At most `batch` connections wait for their greeting at once: the listen backlog. */
    while (greeted + failed < count && now_mono() < deadline) {
        while (opened < count && opened - greeted - failed < batch) {
            iconn_t *c = &cs[opened++];
            c->fd = make_socket();
            if (c->fd < 0 ||
                (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)) {
                failed++;
                continue;
            }
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        }
        int n = epoll_wait(ep, evs, MAXEV, 100);
        for (int i = 0; i < n; i++) {
            iconn_t *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            size_t used;
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                failed++;
                continue;
            }
            c->len += (size_t)r;
            int code = parse_reply(c->buf, c->len, &used);
            if (code == 220) {
                c->greeted = 1;
                greeted++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            } else if (code != 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                failed++;
            }
        }
    }
    double connect_s = now_mono() - t0;
    double held_at = now_wall();
    /* The server now holds `greeted` idle sessions: measure a newcomer's wait. */
    double waits[64];
    if (probes > 64) probes = 64;
    double hold_end = now_mono() + hold;
    for (int i = 0; i < probes; i++) {
        waits[i] = probe_greeting(&sa, 30);
        usleep(100000);
    }
    while (now_mono() < hold_end) usleep(50000);
    /* Count the sessions the server dropped while they were held (EOF now readable). */
    int dropped = 0;
    for (int i = 0; i < opened; i++) {
        if (!cs[i].greeted) continue;
        char b[256];
        ssize_t r = recv(cs[i].fd, b, sizeof b, MSG_DONTWAIT);
        if (r == 0) dropped++;
    }
    for (int i = 0; i < opened; i++)
        if (cs[i].fd > 0) close(cs[i].fd);
    double user, sys;
    cpu_times(&user, &sys);
    printf("{\"requested\": %d, \"greeted\": %d, \"failed\": %d, \"dropped_while_held\": %d, "
           "\"connect_all_s\": %.3f, \"held_at_wall\": %.6f, \"probe_ms\": [",
           count, greeted, failed, dropped, connect_s, held_at);
    for (int i = 0; i < probes; i++) printf("%s%.3f", i ? ", " : "", waits[i]);
    printf("], \"cpu_user_s\": %.4f, \"cpu_sys_s\": %.4f}\n", user, sys);
    return greeted == count ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: loadgen send|sink|idle [options] (-h for each)\n");
        return 2;
    }
    if (!strcmp(argv[1], "send")) return cmd_send(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sink")) return cmd_sink(argc - 1, argv + 1);
    if (!strcmp(argv[1], "idle")) return cmd_idle(argc - 1, argv + 1);
    fprintf(stderr, "loadgen: unknown command %s\n", argv[1]);
    return 2;
}
