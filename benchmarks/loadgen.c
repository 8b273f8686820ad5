/* A small HTTP/1.1 load generator for benchmarks/serve.py: what a C client (Triton's
 * perf_analyzer is C++) costs the machine, which is little next to a Python one.
 *
 * CONNECTIONS threads, each on its own keep-alive connection to 127.0.0.1:PORT, write the
 * request in REQUEST_FILE (head and body, as bytes) over and over for SECONDS, and read each
 * answer whole by its Content-Length. Every answer must be "HTTP/1.1 200": anything else, a
 * closed connection or a malformed answer stops the run with exit status 1 and one line on
 * stderr. On success it prints one JSON object on stdout: the requests answered, the seconds
 * they took, and each request's latency in microseconds.
 *
 *     cc -O2 -pthread -o loadgen benchmarks/loadgen.c
 *     loadgen PORT CONNECTIONS SECONDS REQUEST_FILE
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ANSWER_MAX (64 << 20)

static int port;
static double seconds;
static char *request;
static size_t request_size;
static pthread_barrier_t start_line;
static double stop_at;

struct worker {
    pthread_t thread;
    double *latencies; /* microseconds */
    size_t count, capacity;
    char error[256];
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int send_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* One answer into buf (ANSWER_MAX bytes): 0, or -1 with the reason in w->error. */
static int read_answer(int fd, char *buf, struct worker *w) {
    size_t filled = 0, head_end = 0, total = 0;
    for (;;) {
        if (filled == ANSWER_MAX) {
            snprintf(w->error, sizeof w->error, "an answer larger than %d bytes", ANSWER_MAX);
            return -1;
        }
        ssize_t n = recv(fd, buf + filled, ANSWER_MAX - filled, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(w->error, sizeof w->error, "the server closed the connection (%s)", n < 0 ? strerror(errno) : "EOF");
            return -1;
        }
        filled += (size_t)n;
        if (!head_end) {
            char *end = memmem(buf, filled, "\r\n\r\n", 4);
            if (!end) continue;
            head_end = (size_t)(end - buf) + 4;
            if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0) {
                snprintf(w->error, sizeof w->error, "the answer was not 200: %.80s", buf);
                return -1;
            }
            long length = -1;
            for (char *line = memmem(buf, head_end, "\r\n", 2); line && line + 2 < buf + head_end;
                 line = memmem(line + 2, (size_t)(buf + head_end - line - 2), "\r\n", 2)) {
                if (strncasecmp(line + 2, "Content-Length:", 15) == 0) length = strtol(line + 17, NULL, 10);
            }
            if (length < 0) {
                snprintf(w->error, sizeof w->error, "an answer without Content-Length");
                return -1;
            }
            total = head_end + (size_t)length;
            if (total > ANSWER_MAX) {
                snprintf(w->error, sizeof w->error, "an answer larger than %d bytes", ANSWER_MAX);
                return -1;
            }
        }
        if (filled >= total) {
            if (filled > total) {
                snprintf(w->error, sizeof w->error, "bytes after the answer's body");
                return -1;
            }
            return 0;
        }
    }
}

static void *run(void *arg) {
    struct worker *w = arg;
    char *buf = malloc(ANSWER_MAX);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        snprintf(w->error, sizeof w->error, "cannot connect to 127.0.0.1:%d (%s)", port, strerror(errno));
    } else {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    pthread_barrier_wait(&start_line);
    while (!w->error[0]) {
        double t0 = now();
        if (t0 >= stop_at) break;
        if (send_all(fd, request, request_size) != 0) {
            snprintf(w->error, sizeof w->error, "sending failed (%s)", strerror(errno));
            break;
        }
        if (read_answer(fd, buf, w) != 0) break;
        if (w->count == w->capacity) {
            w->capacity = w->capacity ? 2 * w->capacity : 4096;
            w->latencies = realloc(w->latencies, w->capacity * sizeof *w->latencies);
            if (!w->latencies) {
                snprintf(w->error, sizeof w->error, "out of memory");
                break;
            }
        }
        w->latencies[w->count++] = (now() - t0) * 1e6;
    }
    if (fd >= 0) close(fd);
    free(buf);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: loadgen PORT CONNECTIONS SECONDS REQUEST_FILE\n");
        return 2;
    }
    port = atoi(argv[1]);
    int connections = atoi(argv[2]);
    seconds = atof(argv[3]);
    if (port <= 0 || port > 65535 || connections <= 0 || connections > 1024 || !(seconds > 0)) {
        fprintf(stderr, "loadgen: PORT 1-65535, CONNECTIONS 1-1024 and SECONDS > 0, got %s %s %s\n",
                argv[1], argv[2], argv[3]);
        return 2;
    }
    FILE *f = fopen(argv[4], "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0) {
        fprintf(stderr, "loadgen: cannot read %s\n", argv[4]);
        return 2;
    }
    request_size = (size_t)ftell(f);
    rewind(f);
    request = malloc(request_size ? request_size : 1);
    if (!request || fread(request, 1, request_size, f) != request_size || request_size == 0) {
        fprintf(stderr, "loadgen: cannot read %s (or it is empty)\n", argv[4]);
        return 2;
    }
    fclose(f);

    struct worker *workers = calloc((size_t)connections, sizeof *workers);
    pthread_barrier_init(&start_line, NULL, (unsigned)connections + 1);
    stop_at = 1e300;
    for (int i = 0; i < connections; i++) pthread_create(&workers[i].thread, NULL, run, &workers[i]);
    double begin = now();
    stop_at = begin + seconds;
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < connections; i++) pthread_join(workers[i].thread, NULL);
    double elapsed = now() - begin;

    size_t total = 0;
    for (int i = 0; i < connections; i++) {
        if (workers[i].error[0]) {
            fprintf(stderr, "loadgen: connection %d: %s\n", i, workers[i].error);
            return 1;
        }
        total += workers[i].count;
    }
    printf("{\"requests\": %zu, \"seconds\": %.6f, \"latencies_us\": [", total, elapsed);
    const char *sep = "";
    for (int i = 0; i < connections; i++) {
        for (size_t k = 0; k < workers[i].count; k++) {
            printf("%s%.1f", sep, workers[i].latencies[k]);
            sep = ", ";
        }
    }
    printf("]}\n");
    return 0;
}
