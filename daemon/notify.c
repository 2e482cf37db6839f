/* The systemd notification protocol (READY, STATUS, RELOADING, STOPPING,
 * WATCHDOG), through libsystemd when the build has it. Without it every call
 * does nothing, and outside systemd (no NOTIFY_SOCKET) libsystemd itself
 * makes them no-ops. Called by daemon.c only. */
#include <stdarg.h>
#include <stdio.h>

#include "newsalertd.h"

#ifdef NA_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void na_notify(const char *state)
{
    sd_notify(0, state);
}

void na_notifyf(const char *fmt, ...)
{
    char state[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(state, sizeof(state), fmt, ap);
    va_end(ap);
    sd_notify(0, state);
}

uint64_t na_notify_watchdog_usec(void)
{
    uint64_t usec = 0;

    /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID is unset or is
     * this process; the environment is left alone (we start no children). */
    if (sd_watchdog_enabled(0, &usec) > 0)
        return usec;
    return 0;
}

bool na_notify_supported(void)
{
    return true;
}
#else
void na_notify(const char *state)
{
    (void)state;
}

void na_notifyf(const char *fmt, ...)
{
    (void)fmt;
}

uint64_t na_notify_watchdog_usec(void)
{
    return 0;
}

bool na_notify_supported(void)
{
    return false;
}
#endif
