// open+close rate and per-call latency percentiles on one path (bench/fuse/open-ab.sh).
// The percentiles show which scheduling mode a run got (see RESULTS.md, "open+close"):
// the mean alone cannot tell a slower daemon from an unlucky vCPU placement.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: openlat PATH COUNT\n"); return 2; }
    long n = atol(argv[2]);
    if (n < 10) { fprintf(stderr, "COUNT must be at least 10\n"); return 2; }
    double *lat = malloc(n * sizeof *lat);
    if (!lat) { perror("malloc"); return 1; }
    double t0 = now_us();
    for (long i = 0; i < n; i++) {
        double a = now_us();
        int fd = open(argv[1], O_RDONLY);
        if (fd < 0) { perror("open"); return 1; }
        close(fd);
        lat[i] = now_us() - a;
    }
    double total = now_us() - t0;
    qsort(lat, n, sizeof *lat, by_value);
    printf("%.0f %.1f %.1f %.1f\n", n / total * 1e6, lat[n / 10], lat[n / 2], lat[9 * n / 10]);
    free(lat);
    return 0;
}
