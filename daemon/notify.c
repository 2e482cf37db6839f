/* The systemd notification protocol, through libsystemd when the build has
 * it; without it (or outside systemd) the calls do nothing. */
#include "newsalertd.h"

#ifdef NA_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void na_notify(const char *state)
{
    sd_notify(0, state);
}
#else
void na_notify(const char *state)
{
    (void)state;
}
#endif
