// open+close and stat rates on one path, for the FUSE benchmark (bench/fuse/run.sh).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: rates open|stat PATH COUNT\n"); return 2; }
    const char *path = argv[2];
    long count = atol(argv[3]);
    int do_open = argv[1][0] == 'o';
    struct stat st;
    double t0 = now();
    for (long i = 0; i < count; i++) {
        if (do_open) {
            int fd = open(path, O_RDONLY);
            if (fd < 0) { perror("open"); return 1; }
            close(fd);
        } else if (stat(path, &st) != 0) { perror("stat"); return 1; }
    }
    printf("%.0f\n", count / (now() - t0));
    return 0;
}
