/*
 * Echo load generator in C, so that the client is never the bottleneck:
 * N connections to 127.0.0.1:PORT, one SIZE-byte request in flight on each,
 * for SECONDS; prints the number of answered requests.
 *
 * Build: cc -O2 -o loadgen benchmarks/loadgen.c   (bench_echo.py does it)
 * Run:   ./loadgen PORT CONNECTIONS SECONDS [SIZE]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT CONNECTIONS SECONDS [SIZE]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int conns = atoi(argv[2]);
    double seconds = atof(argv[3]);
    int size = argc > 4 ? atoi(argv[4]) : 64;
    char *message = malloc(size);
    char buffer[65536];
    memset(message, 'x', size);
    int *pending = calloc(65536, sizeof(int));
    int ep = epoll_create1(0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
            perror("connect");
            return 1;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        if (send(fd, message, size, 0) != size) {
            perror("send");
            return 1;
        }
        pending[fd] = size;
    }
    long done = 0;
    double deadline = now() + seconds;
    struct epoll_event events[1024];
    while (now() < deadline) {
        int n = epoll_wait(ep, events, 1024, 100);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            ssize_t got = recv(fd, buffer, sizeof buffer, 0);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) continue;
                fprintf(stderr, "server closed a connection\n");
                return 1;
            }
            pending[fd] -= got;
            if (pending[fd] <= 0) {
                done++;
                pending[fd] = size;
                if (send(fd, message, size, 0) != size) {
                    perror("send");
                    return 1;
                }
            }
        }
    }
    printf("%ld\n", done);
    return 0;
}
