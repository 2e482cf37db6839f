/* UTF-8 validation (RFC 3629), used on every string of an incoming article. */
#include <stdint.h>
#include <string.h>

#include "newsalert/utf8.h"

bool na_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        /* Most text is ASCII: skip it eight bytes at a time. */
        uint64_t w;
        while (len - i >= 8 && (memcpy(&w, s + i, 8), (w & 0x8080808080808080u) == 0))
            i += 8;
        if (i == len)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

size_t na_utf8_floor(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = len;

    /* Step back over continuation bytes to the lead byte, then keep the
     * character only if it is complete. */
    size_t back = 0;
    while (n > 0 && back < 4 && (s[n - 1] & 0xc0) == 0x80) {
        n--;
        back++;
    }
    if (n == 0)
        return 0;
    unsigned char lead = s[n - 1];
    size_t need = lead < 0x80 ? 0 : lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
    if (lead < 0x80)
        return len - back;
    return back == need ? len : n - 1;
}
