/*
 * progress.c: the text of the progress bar and of durations (progress.h).
 */
#include "cli/progress.h"

#include <stdio.h>

void progress_duration(char *buf, size_t len, double seconds)
{
    if (seconds < 0) {
        snprintf(buf, len, "?");
        return;
    }
    long long s = (long long)(seconds + 0.5);
    if (s < 60)
        snprintf(buf, len, "%llds", s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
}

void progress_line(char *buf, size_t len, int width, long long done, long long failed,
                   long long total, double eta_s)
{
    char bar[256];
    if (width < 1)
        width = 1;
    if (width > (int)sizeof bar - 1)
        width = (int)sizeof bar - 1;
    long long settled = done + failed;
    int filled = total > 0 ? (int)(settled * width / total) : width;
    if (filled > width)
        filled = width;
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '-';
    bar[width] = '\0';
    char eta[32] = "";
    if (eta_s >= 0) {
        char d[24];
        progress_duration(d, sizeof d, eta_s);
        snprintf(eta, sizeof eta, "  ETA %s", d);
    }
    snprintf(buf, len, "[%s] %lld/%lld done  %lld failed%s", bar, done, total, failed, eta);
}
