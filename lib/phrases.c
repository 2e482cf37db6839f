/* The phrase matcher (phrases.h): the expansion of a pattern into word
 * sequences, the tables built from them, and the scan of a text's tokens. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/phrases.h"
#include "newsalert/utf8.h"
#include "wordchar.h"

/* A pattern is taken only while it stays small: past these it is left to
 * Vectorscan, which is better at large alternations of that kind. */
#define MAX_SEQUENCES 4096 /* word sequences per pattern */
#define MAX_SEQ_LEN 256    /* bytes in one sequence */
#define MAX_TOKENS 16      /* words in one sequence */
#define MAX_WORD_LEN 64    /* bytes in one word, folded */

/* In an expansion, SEP_CLASS stands for "[\s\-]+", the run of white space
 * or hyphens that the ruleset writes between the words of a phrase, and
 * BOUNDARY for an inner \b. Neither byte can come from a pattern (control
 * characters are refused). */
#define SEP_CLASS '\x01'
#define BOUNDARY '\x02'
#define SEP_ID_CLASS 1u /* separator id of SEP_CLASS; exact separators follow */

/* ---- interned strings: the words of the phrases, and their separators ---- */

/* Bytes kept end to end; an offset and a length name a piece. */
struct bytepool {
    char *b;
    size_t len, cap;
};

/* Appends s[0..n); its offset in *off. 0, or -1 out of memory. */
static int bytepool_add(struct bytepool *p, const void *s, size_t n, uint32_t *off)
{
    if (p->len + n > p->cap) {
        size_t ncap = p->cap ? p->cap : 1024;
        while (ncap < p->len + n)
            ncap *= 2;
        char *b = realloc(p->b, ncap);
        if (b == NULL)
            return -1;
        p->b = b;
        p->cap = ncap;
    }
    if (n)
        memcpy(p->b + p->len, s, n);
    *off = (uint32_t)p->len;
    p->len += n;
    return 0;
}

struct strtab_entry {
    uint64_t hash;
    uint32_t off, len; /* in the pool */
    uint32_t root;     /* words: the trie node of a phrase that starts here */
};

struct strtab {
    struct strtab_entry *v; /* id i is v[i - 1] */
    size_t n, cap;
    uint32_t *slots; /* open addressing: id, or 0 for empty */
    size_t mask;
    struct bytepool pool;
};

/* FNV-1a: the scan computes it byte by byte as it reads a word. */
#define HASH_SEED 0xcbf29ce484222325ull
#define HASH_STEP(h, c) (((h) ^ (c)) * 0x100000001b3ull)

static uint64_t hash_bytes(const unsigned char *s, size_t n)
{
    uint64_t h = HASH_SEED;
    for (size_t i = 0; i < n; i++)
        h = HASH_STEP(h, s[i]);
    return h;
}

/* Where a hash starts looking: its low bits, with the high ones folded
 * in. */
static inline uint64_t slot_of(uint64_t h)
{
    return h ^ (h >> 29);
}

static int strtab_rehash(struct strtab *t, size_t nslots)
{
    uint32_t *s = calloc(nslots, sizeof(*s));
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t k = slot_of(t->v[i].hash) & (nslots - 1);
        while (s[k])
            k = (k + 1) & (nslots - 1);
        s[k] = (uint32_t)(i + 1);
    }
    free(t->slots);
    t->slots = s;
    t->mask = nslots - 1;
    return 0;
}

static uint32_t strtab_find(const struct strtab *t, const unsigned char *s, size_t n,
                            uint64_t h)
{
    if (t->slots == NULL)
        return 0;
    for (size_t k = slot_of(h) & t->mask; t->slots[k]; k = (k + 1) & t->mask) {
        const struct strtab_entry *e = &t->v[t->slots[k] - 1];
        if (e->hash == h && e->len == n && !memcmp(t->pool.b + e->off, s, n))
            return t->slots[k];
    }
    return 0;
}

/* The id of s, added when new; 0 when out of memory. */
static uint32_t strtab_intern(struct strtab *t, const unsigned char *s, size_t n)
{
    uint64_t h = hash_bytes(s, n);
    uint32_t id = strtab_find(t, s, n, h);
    if (id)
        return id;
    if ((t->n + 1) * 2 > t->mask + 1 &&
        strtab_rehash(t, t->slots ? (t->mask + 1) * 2 : 64) < 0)
        return 0;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct strtab_entry *v = realloc(t->v, ncap * sizeof(*v));
        if (v == NULL)
            return 0;
        t->v = v;
        t->cap = ncap;
    }
    uint32_t off;
    if (bytepool_add(&t->pool, s, n, &off) < 0)
        return 0;
    t->v[t->n] = (struct strtab_entry){h, off, (uint32_t)n, 0};
    t->n++;
    size_t k = slot_of(h) & t->mask;
    while (t->slots[k])
        k = (k + 1) & t->mask;
    t->slots[k] = (uint32_t)t->n;
    return (uint32_t)t->n;
}

static void strtab_free(struct strtab *t)
{
    free(t->v);
    free(t->slots);
    free(t->pool.b);
}

/* ---- the trie ---- */

struct accept {
    uint32_t node;
    unsigned id;
    /* Case-sensitive sequences: the exact bytes the match must have (in
     * the exact pool); caseless ones have exact_len 0. */
    uint32_t exact_off, exact_len;
    /* A sequence that ends in punctuation ("u.s."): the bytes after its
     * last word (in the exact pool), which the text's gap after that word
     * must equal (trail_bounded: the pattern's \b wants a word next) or
     * begin with. */
    uint32_t trail_off, trail_len;
    bool trail_bounded;
};

struct node {
    uint32_t accept_start, n_accept; /* a run of accepts, after finish */
    bool has_children;
};

/* An edge: from a node, on a word after a separator. */
struct edge {
    uint64_t key;
    uint32_t child;
};

struct na_phrases {
    struct strtab words, seps;
    uint32_t space_sep; /* the id of " ", the usual separator, or 0 */
    struct node *nodes;
    size_t n_nodes, cap_nodes;
    struct edge *edges; /* open addressing; key 0 is empty */
    size_t n_edges, edge_mask;
    struct accept *accepts;
    size_t n_accepts, cap_accepts;
    struct bytepool exact; /* accept's exact and trailing bytes */
    size_t n_patterns;
    size_t max_word_len; /* of the words table */
};

static uint64_t edge_key(uint32_t node, uint32_t word, uint32_t sep)
{
    return ((uint64_t)node << 40) | ((uint64_t)word << 16) | sep;
}

static uint64_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static uint32_t edge_find(const struct na_phrases *p, uint64_t key)
{
    if (p->edges == NULL)
        return 0;
    for (size_t k = mix64(key) & p->edge_mask; p->edges[k].key;
         k = (k + 1) & p->edge_mask)
        if (p->edges[k].key == key)
            return p->edges[k].child;
    return 0;
}

static int edge_put(struct na_phrases *p, uint64_t key, uint32_t child)
{
    if ((p->n_edges + 1) * 2 > (p->edges ? p->edge_mask + 1 : 0)) {
        size_t n = p->edges ? (p->edge_mask + 1) * 2 : 1024;
        struct edge *e = calloc(n, sizeof(*e));
        if (e == NULL)
            return -1;
        for (size_t i = 0; p->edges && i <= p->edge_mask; i++)
            if (p->edges[i].key) {
                size_t k = mix64(p->edges[i].key) & (n - 1);
                while (e[k].key)
                    k = (k + 1) & (n - 1);
                e[k] = p->edges[i];
            }
        free(p->edges);
        p->edges = e;
        p->edge_mask = n - 1;
    }
    size_t k = mix64(key) & p->edge_mask;
    while (p->edges[k].key)
        k = (k + 1) & p->edge_mask;
    p->edges[k] = (struct edge){key, child};
    p->n_edges++;
    return 0;
}

/* A new node's number, or 0 when out of memory (node 0 is never used, so
 * that 0 can mean "none"). */
static uint32_t node_new(struct na_phrases *p)
{
    if (p->n_nodes >= (1u << 24) - 1)
        return 0; /* past what an edge key holds */
    if (p->n_nodes == p->cap_nodes) {
        size_t ncap = p->cap_nodes ? p->cap_nodes * 2 : 256;
        struct node *v = realloc(p->nodes, ncap * sizeof(*v));
        if (v == NULL)
            return 0;
        p->nodes = v;
        p->cap_nodes = ncap;
    }
    if (p->n_nodes == 0)
        p->nodes[p->n_nodes++] = (struct node){0};
    p->nodes[p->n_nodes] = (struct node){0};
    return (uint32_t)p->n_nodes++;
}

struct na_phrases *na_phrases_new(void)
{
    return calloc(1, sizeof(struct na_phrases));
}

void na_phrases_free(struct na_phrases *p)
{
    if (p == NULL)
        return;
    strtab_free(&p->words);
    strtab_free(&p->seps);
    free(p->nodes);
    free(p->edges);
    free(p->accepts);
    free(p->exact.b);
    free(p);
}

size_t na_phrases_pattern_count(const struct na_phrases *p)
{
    return p->n_patterns;
}

/* ---- expansion: a regex into the set of texts it matches ---- */

struct seq {
    unsigned char *s;
    size_t n;
};

struct seqset {
    struct seq *v;
    size_t n, cap;
};

static void seqset_free(struct seqset *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i].s);
    free(a->v);
    *a = (struct seqset){0};
}

struct parse {
    const unsigned char *p;
    const char *why; /* set: not a fixed phrase */
    bool oom;
};

static int fail(struct parse *x, const char *why)
{
    if (x->why == NULL)
        x->why = why;
    return -1;
}

static int seqset_add(struct parse *x, struct seqset *a, const unsigned char *s, size_t n)
{
    if (a->n == MAX_SEQUENCES)
        return fail(x, "expands to too many phrases");
    if (n > MAX_SEQ_LEN)
        return fail(x, "expands to too long a phrase");
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 8;
        struct seq *v = realloc(a->v, ncap * sizeof(*v));
        if (v == NULL)
            goto oom;
        a->v = v;
        a->cap = ncap;
    }
    unsigned char *c = malloc(n + 1);
    if (c == NULL)
        goto oom;
    if (n)
        memcpy(c, s, n);
    a->v[a->n++] = (struct seq){c, n};
    return 0;
oom:
    x->oom = true;
    return -1;
}

/* a := a followed by b, every way. */
static int seqset_product(struct parse *x, struct seqset *a, const struct seqset *b)
{
    struct seqset out = {0};
    unsigned char buf[2 * MAX_SEQ_LEN];
    if (a->n * b->n > MAX_SEQUENCES)
        return fail(x, "expands to too many phrases");
    for (size_t i = 0; i < a->n; i++)
        for (size_t j = 0; j < b->n; j++) {
            memcpy(buf, a->v[i].s, a->v[i].n);
            memcpy(buf + a->v[i].n, b->v[j].s, b->v[j].n);
            if (seqset_add(x, &out, buf, a->v[i].n + b->v[j].n) < 0) {
                seqset_free(&out);
                return -1;
            }
        }
    seqset_free(a);
    *a = out;
    return 0;
}

/* a := a or b; b is emptied. */
static int seqset_union(struct parse *x, struct seqset *a, struct seqset *b)
{
    for (size_t j = 0; j < b->n; j++)
        if (seqset_add(x, a, b->v[j].s, b->v[j].n) < 0)
            return -1;
    seqset_free(b);
    return 0;
}

/* One character class, as bytes for ASCII and whole characters beyond. */
struct cclass {
    bool ascii[128];
    struct seqset wide;
};

static const char SPACE_BYTES[] = "\t\n\v\f\r ";

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The byte of a \xHH escape at x->p (just after the 'x'). */
static int parse_hex(struct parse *x, unsigned char *out)
{
    int hi = hex_digit(x->p[0]), lo = hi < 0 ? -1 : hex_digit(x->p[1]);
    if (lo < 0)
        return fail(x, "a \\x escape that is not two hex digits");
    *out = (unsigned char)(hi * 16 + lo);
    x->p += 2;
    return 0;
}

static bool literal_ok(unsigned char c)
{
    return c >= 0x20 || c == '\t' || c == '\n';
}

static int parse_class(struct parse *x, struct cclass *cc)
{
    bool first = true;
    if (*x->p == '^')
        return fail(x, "a negated class");
    for (;;) {
        unsigned char c = *x->p, lo;
        if (c == '\0')
            return fail(x, "an unterminated class");
        if (c == ']' && !first) {
            x->p++;
            return 0;
        }
        first = false;
        if (c >= 0x80) {
            size_t n = na_utf8_char_len(c);
            for (size_t k = 1; k < n; k++)
                if ((x->p[k] & 0xc0) != 0x80)
                    return fail(x, "a class with broken UTF-8");
            if (seqset_add(x, &cc->wide, x->p, n) < 0)
                return -1;
            x->p += n;
            continue;
        }
        x->p++;
        if (c == '\\') {
            unsigned char e = *x->p++;
            if (e == 's') {
                for (const char *s = SPACE_BYTES; *s; s++)
                    cc->ascii[(unsigned char)*s] = true;
                continue;
            }
            if (e == 'd') {
                for (int d = '0'; d <= '9'; d++)
                    cc->ascii[d] = true;
                continue;
            }
            if (e == 'x') {
                if (parse_hex(x, &lo) < 0)
                    return -1;
            } else if (e != '\0' && e < 0x80 && !na_word_byte[e]) {
                lo = e;
            } else {
                return fail(x, "a class escape that is not a fixed character");
            }
        } else {
            lo = c;
        }
        if (lo >= 0x80 || !literal_ok(lo))
            return fail(x, "a class with a control or non-ASCII byte");
        if (x->p[0] == '-' && x->p[1] != ']' && x->p[1] != '\0') {
            unsigned char hi = x->p[1];
            if (hi == '\\' || hi >= 0x80 || hi < lo)
                return fail(x, "a class range that is not plain ASCII");
            x->p += 2;
            for (unsigned k = lo; k <= hi; k++)
                cc->ascii[k] = true;
            continue;
        }
        cc->ascii[lo] = true;
    }
}

/* Is the class exactly [\s\-], the phrase separator? */
static bool class_is_separator(const struct cclass *cc)
{
    if (cc->wide.n)
        return false;
    for (unsigned k = 0; k < 128; k++)
        if (cc->ascii[k] != (k == '-' || (k && strchr(SPACE_BYTES, (int)k))))
            return false;
    return true;
}

static int class_to_set(struct parse *x, struct cclass *cc, struct seqset *out)
{
    for (unsigned k = 0; k < 128; k++)
        if (cc->ascii[k]) {
            unsigned char b = (unsigned char)k;
            if (seqset_add(x, out, &b, 1) < 0)
                return -1;
        }
    return seqset_union(x, out, &cc->wide);
}

static int parse_alt(struct parse *x, struct seqset *out);

/* One atom and its quantifier, into out. */
static int parse_piece(struct parse *x, struct seqset *out)
{
    unsigned char c = *x->p, b;
    bool separator = false;

    if (c == '(') {
        x->p++;
        if (x->p[0] == '?') {
            if (x->p[1] != ':')
                return fail(x, "a group with an option or an assertion");
            x->p += 2;
        }
        if (parse_alt(x, out) < 0)
            return -1;
        if (*x->p != ')')
            return fail(x, "an unbalanced group");
        x->p++;
    } else if (c == '[') {
        struct cclass cc = {0};
        x->p++;
        int rc = parse_class(x, &cc);
        if (rc == 0) {
            separator = class_is_separator(&cc);
            rc = class_to_set(x, &cc, out);
        }
        seqset_free(&cc.wide);
        if (rc < 0)
            return -1;
    } else if (c == '\\') {
        unsigned char e = x->p[1];
        if (e == '\0')
            return fail(x, "a trailing backslash");
        x->p += 2;
        if (e == 'b') {
            b = BOUNDARY;
            return seqset_add(x, out, &b, 1);
        }
        if (e == 's' || e == 'd') {
            struct cclass cc = {0};
            for (unsigned k = 0; k < 128; k++)
                cc.ascii[k] = e == 's' ? k && strchr(SPACE_BYTES, (int)k) != NULL
                                       : k >= '0' && k <= '9';
            if (class_to_set(x, &cc, out) < 0)
                return -1;
        } else if (e == 'x') {
            if (parse_hex(x, &b) < 0)
                return -1;
            if (!literal_ok(b))
                return fail(x, "a control character");
            if (seqset_add(x, out, &b, 1) < 0)
                return -1;
        } else if (e != '\0' && e < 0x80 && !na_word_byte[e]) {
            if (seqset_add(x, out, &e, 1) < 0)
                return -1;
        } else {
            return fail(x, "an escape that is not a fixed character");
        }
    } else if (c == '.') {
        return fail(x, "'.', which matches any character");
    } else if (c == '^' || c == '$') {
        return fail(x, "an anchor");
    } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        return fail(x, "a quantifier with nothing before it");
    } else if (!literal_ok(c)) {
        return fail(x, "a control character");
    } else {
        size_t n = na_utf8_char_len(c);
        for (size_t k = 1; k < n; k++)
            if ((x->p[k] & 0xc0) != 0x80)
                return fail(x, "broken UTF-8");
        if (seqset_add(x, out, x->p, n) < 0)
            return -1;
        x->p += n;
    }

    c = *x->p;
    if (c == '?') {
        x->p++;
        if (*x->p == '?' || *x->p == '+')
            return fail(x, "a lazy or possessive quantifier");
        struct seqset empty = {0};
        if (seqset_add(x, &empty, (const unsigned char *)"", 0) < 0)
            return -1;
        return seqset_union(x, out, &empty);
    }
    if (c == '+' && separator) {
        x->p++;
        for (size_t i = 0; i < out->n; i++)
            free(out->v[i].s);
        out->n = 0;
        b = SEP_CLASS;
        return seqset_add(x, out, &b, 1);
    }
    if (c == '*' || c == '+')
        return fail(x, "a repetition without bound");
    if (c == '{') {
        unsigned lo = 0, hi;
        const unsigned char *q = x->p + 1;
        while (*q >= '0' && *q <= '9' && lo < 100)
            lo = lo * 10 + (unsigned)(*q++ - '0');
        hi = lo;
        if (*q == ',') {
            q++;
            if (*q < '0' || *q > '9')
                return fail(x, "a repetition without bound");
            hi = 0;
            while (*q >= '0' && *q <= '9' && hi < 100)
                hi = hi * 10 + (unsigned)(*q++ - '0');
        }
        if (*q != '}' || q == x->p + 1 || hi < lo || hi > 4)
            return fail(x, "a repetition of more than four");
        x->p = q + 1;
        struct seqset all = {0}, power = {0};
        int rc = seqset_add(x, &power, (const unsigned char *)"", 0);
        for (unsigned k = 0; rc == 0 && k <= hi; k++) {
            if (k >= lo) {
                for (size_t i = 0; rc == 0 && i < power.n; i++)
                    rc = seqset_add(x, &all, power.v[i].s, power.v[i].n);
            }
            if (rc == 0 && k < hi)
                rc = seqset_product(x, &power, out);
        }
        seqset_free(&power);
        seqset_free(out);
        *out = all;
        return rc;
    }
    return 0;
}

static int parse_seq(struct parse *x, struct seqset *out)
{
    if (seqset_add(x, out, (const unsigned char *)"", 0) < 0)
        return -1;
    while (*x->p && *x->p != '|' && *x->p != ')') {
        struct seqset piece = {0};
        int rc = parse_piece(x, &piece);
        if (rc == 0)
            rc = seqset_product(x, out, &piece);
        seqset_free(&piece);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int parse_alt(struct parse *x, struct seqset *out)
{
    if (parse_seq(x, out) < 0)
        return -1;
    while (*x->p == '|') {
        struct seqset more = {0};
        x->p++;
        int rc = parse_seq(x, &more);
        if (rc == 0)
            rc = seqset_union(x, out, &more);
        seqset_free(&more);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- from a sequence to words and separators ---- */

/* Case folding as Vectorscan's caseless UTF-8 mode does it, for the letters
 * a caseless phrase may hold (ASCII and the Latin-1 letters, is_foldable):
 * ASCII and Latin-1 capitals to small, and the characters beyond that
 * Vectorscan takes for one of them: the long s (U+017F) and the Kelvin sign
 * (U+212A) for s and k, the Angstrom sign (U+212B) for å, capital sharp s
 * (U+1E9E) for ß and Ÿ (U+0178) for ÿ. Every other character stands for
 * itself. Returns how many bytes of s it took, with the folded character's
 * bytes in out. */
static size_t fold_char(const unsigned char *s, size_t len, unsigned char *out,
                        size_t *out_len)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        out[0] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        *out_len = 1;
        return 1;
    }
    size_t n = na_utf8_char_len(c);
    if (n > len)
        n = len;
    *out_len = 2;
    out[0] = 0xc3;
    if (n == 2 && c == 0xc3 && s[1] >= 0x80 && s[1] <= 0x9e && s[1] != 0x97) {
        out[1] = (unsigned char)(s[1] + 0x20);
    } else if (n == 2 && c == 0xc5 && s[1] == 0xb8) {
        out[1] = 0xbf;
    } else if (n == 3 && c == 0xe2 && s[1] == 0x84 && s[2] == 0xab) {
        out[1] = 0xa5;
    } else if (n == 3 && c == 0xe1 && s[1] == 0xba && s[2] == 0x9e) {
        out[1] = 0x9f;
    } else if (n == 2 && c == 0xc5 && s[1] == 0xbf) {
        out[0] = 's';
        *out_len = 1;
    } else if (n == 3 && c == 0xe2 && s[1] == 0x84 && s[2] == 0xaa) {
        out[0] = 'k';
        *out_len = 1;
    } else {
        memcpy(out, s, n);
        *out_len = n;
    }
    return n;
}

struct word_run {
    size_t start, end; /* in the sequence */
    bool word;
};

/* Splits a sequence into alternating runs of word and non-word characters,
 * as the scan's tokenizer would split the text it matches. */
static size_t split_runs(const unsigned char *s, size_t n, struct word_run *runs,
                         size_t max)
{
    size_t nr = 0;
    for (size_t i = 0; i < n;) {
        bool w = na_word_char(s, i, n);
        size_t k = na_utf8_char_len(s[i]);
        if (nr == 0 || runs[nr - 1].word != w) {
            if (nr == max)
                return max + 1;
            runs[nr++] = (struct word_run){i, i + k, w};
        } else {
            runs[nr - 1].end = i + k;
        }
        i += k;
    }
    return nr;
}

struct parsed_seq {
    uint32_t words[MAX_TOKENS];
    uint32_t seps[MAX_TOKENS]; /* seps[k]: before words[k], k >= 1 */
    size_t n_words;
    size_t trail_start, trail_len; /* punctuation after the last word */
};

/* Checks one sequence of a pattern and cuts it into words and separators,
 * interning them. 1 when it can be matched on tokens, 0 with why, -1 oom. */
static int sequence_words(struct na_phrases *p, unsigned char *s, size_t *np,
                          bool caseless, bool bound_end, struct parsed_seq *out,
                          const char **why)
{
    size_t n = *np;
    /* An inner \b at either end is the boundary the tagger checks anyway
     * (its own, which implies Vectorscan's there); anywhere else it is a
     * condition the tokens cannot express. */
    while (n && s[0] == BOUNDARY)
        memmove(s, s + 1, --n);
    while (n && s[n - 1] == BOUNDARY)
        n--;
    *np = n;
    if (n == 0)
        return *why = "can match empty text", 0;
    if (memchr(s, BOUNDARY, n))
        return *why = "a \\b inside the pattern", 0;
    if (caseless)
        for (size_t i = 0; i < n; i++)
            if (s[i] >= 'A' && s[i] <= 'Z')
                s[i] = (unsigned char)(s[i] + 32);
    if (!na_utf8_valid((const char *)s, n))
        return *why = "bytes that are not whole UTF-8 characters", 0;

    struct word_run runs[2 * MAX_TOKENS];
    size_t nr = split_runs(s, n, runs, 2 * MAX_TOKENS - 1);
    if (nr > 2 * MAX_TOKENS - 1)
        return *why = "too many words", 0;
    if (!runs[0].word)
        return *why = "begins with a character that is not a letter or digit", 0;
    /* It ends on a word: the tagger's \b there is the token's end. It ends
     * on punctuation: the gap after the last word is checked. Without \b,
     * a match could end inside a word, which tokens cannot say. */
    out->trail_start = out->trail_len = 0;
    if (!runs[nr - 1].word) {
        out->trail_start = runs[nr - 1].start;
        out->trail_len = runs[nr - 1].end - runs[nr - 1].start;
        if (memchr(s + out->trail_start, SEP_CLASS, out->trail_len))
            return *why = "ends in flexible spacing", 0;
        nr--;
    } else if (!bound_end) {
        return *why = "not bounded by \\b at its end", 0;
    }
    out->n_words = 0;
    for (size_t r = 0; r < nr; r++) {
        const unsigned char *b = s + runs[r].start;
        size_t len = runs[r].end - runs[r].start;
        if (!runs[r].word) {
            uint32_t id;
            if (memchr(b, SEP_CLASS, len)) {
                if (len != 1)
                    return *why = "a separator that mixes white space with punctuation",
                           0;
                if (!caseless)
                    return *why = "a case-sensitive phrase with flexible spacing", 0;
                id = SEP_ID_CLASS;
            } else {
                id = strtab_intern(&p->seps, b, len);
                if (id == 0)
                    return -1;
                id += SEP_ID_CLASS;
            }
            if (id >= (1u << 16))
                return *why = "too many separators", 0;
            out->seps[out->n_words] = id;
            continue;
        }
        unsigned char folded[MAX_SEQ_LEN * 2];
        size_t fl = 0;
        for (size_t i = 0; i < len;) {
            size_t ol;
            if (caseless && b[i] >= 0x80 &&
                !(b[i] == 0xc3 && b[i + 1] != 0x97 && b[i + 1] != 0xb7))
                return *why = "a letter beyond Latin-1, matched without case", 0;
            i += fold_char(b + i, len - i, folded + fl, &ol);
            fl += ol;
        }
        if (fl > MAX_WORD_LEN)
            return *why = "a word longer than 64 bytes", 0;
        uint32_t id = strtab_intern(&p->words, folded, fl);
        if (id == 0)
            return -1;
        if (fl > p->max_word_len)
            p->max_word_len = fl;
        if (id >= (1u << 24))
            return *why = "too many words", 0;
        out->words[out->n_words++] = id;
    }
    return 1;
}

static int add_sequence(struct na_phrases *p, unsigned id, const struct parsed_seq *ps,
                        const unsigned char *seq, size_t seq_len, bool caseless,
                        bool bound_end)
{
    struct strtab_entry *first = &p->words.v[ps->words[0] - 1];
    if (first->root == 0 && (first->root = node_new(p)) == 0)
        return -1;
    uint32_t node = first->root;
    for (size_t k = 1; k < ps->n_words; k++) {
        uint64_t key = edge_key(node, ps->words[k], ps->seps[k]);
        uint32_t child = edge_find(p, key);
        if (child == 0) {
            if ((child = node_new(p)) == 0 || edge_put(p, key, child) < 0)
                return -1;
            p->nodes[node].has_children = true;
        }
        node = child;
    }
    if (node >= (1u << 24))
        return -1;
    if (p->n_accepts == p->cap_accepts) {
        size_t ncap = p->cap_accepts ? p->cap_accepts * 2 : 256;
        struct accept *v = realloc(p->accepts, ncap * sizeof(*v));
        if (v == NULL)
            return -1;
        p->accepts = v;
        p->cap_accepts = ncap;
    }
    struct accept a = {.node = node, .id = id, .trail_bounded = bound_end};
    if (!caseless) {
        if (bytepool_add(&p->exact, seq, seq_len, &a.exact_off) < 0)
            return -1;
        a.exact_len = (uint32_t)seq_len;
    }
    if (ps->trail_len) {
        if (bytepool_add(&p->exact, seq + ps->trail_start, ps->trail_len, &a.trail_off) <
            0)
            return -1;
        a.trail_len = (uint32_t)ps->trail_len;
    }
    p->accepts[p->n_accepts++] = a;
    return 0;
}

int na_phrases_add(struct na_phrases *p, unsigned id, const char *expr, bool caseless,
                   bool bound_start, bool bound_end, const char **why)
{
    struct parse x = {(const unsigned char *)expr, NULL, false};
    struct seqset all = {0};
    struct parsed_seq *ps = NULL;
    int rc = 0;

    *why = NULL;
    if (!bound_start) {
        *why = "not bounded by \\b at its start";
        return 0;
    }
    if (parse_alt(&x, &all) < 0 || *x.p != '\0') {
        rc = x.oom ? -1 : 0;
        *why = x.why ? x.why : "an unbalanced group";
        goto out;
    }
    /* Every sequence is checked before any is added: a pattern is matched
     * on tokens whole, or not at all. */
    ps = malloc((all.n ? all.n : 1) * sizeof(*ps));
    if (ps == NULL) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < all.n; i++) {
        /* This trims the \b markers off: what is left is the exact text
         * of a match. */
        rc = sequence_words(p, all.v[i].s, &all.v[i].n, caseless, bound_end, &ps[i], why);
        if (rc <= 0)
            goto out;
    }
    for (size_t i = 0; i < all.n; i++)
        if (add_sequence(p, id, &ps[i], all.v[i].s, all.v[i].n, caseless, bound_end) <
            0) {
            rc = -1;
            goto out;
        }
    p->n_patterns++;
    rc = 1;
out:
    free(ps);
    seqset_free(&all);
    return rc;
}

static int cmp_accept(const void *a, const void *b)
{
    const struct accept *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->exact_off < y->exact_off ? -1 : x->exact_off > y->exact_off;
}

int na_phrases_finish(struct na_phrases *p)
{
    if (p->n_accepts)
        qsort(p->accepts, p->n_accepts, sizeof(*p->accepts), cmp_accept);
    for (size_t i = 0; i < p->n_accepts; i++) {
        struct node *nd = &p->nodes[p->accepts[i].node];
        if (nd->n_accept++ == 0)
            nd->accept_start = (uint32_t)i;
    }
    p->space_sep = strtab_find(&p->seps, (const unsigned char *)" ", 1,
                               hash_bytes((const unsigned char *)" ", 1));
    if (p->space_sep)
        p->space_sep += SEP_ID_CLASS;
    return 0;
}

/* ---- the scan ---- */

/* Per byte: 0 for an ASCII character that is not a word character, the
 * folded character for one that is, NON_ASCII for the bytes of the rest. */
#define NON_ASCII 0xff
static const unsigned char FOLD[256] = {
    ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3',
    ['4'] = '4', ['5'] = '5', ['6'] = '6', ['7'] = '7',
    ['8'] = '8', ['9'] = '9', ['_'] = '_', ['a'] = 'a',
    ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e',
    ['f'] = 'f', ['g'] = 'g', ['h'] = 'h', ['i'] = 'i',
    ['j'] = 'j', ['k'] = 'k', ['l'] = 'l', ['m'] = 'm',
    ['n'] = 'n', ['o'] = 'o', ['p'] = 'p', ['q'] = 'q',
    ['r'] = 'r', ['s'] = 's', ['t'] = 't', ['u'] = 'u',
    ['v'] = 'v', ['w'] = 'w', ['x'] = 'x', ['y'] = 'y',
    ['z'] = 'z', ['A'] = 'a', ['B'] = 'b', ['C'] = 'c',
    ['D'] = 'd', ['E'] = 'e', ['F'] = 'f', ['G'] = 'g',
    ['H'] = 'h', ['I'] = 'i', ['J'] = 'j', ['K'] = 'k',
    ['L'] = 'l', ['M'] = 'm', ['N'] = 'n', ['O'] = 'o',
    ['P'] = 'p', ['Q'] = 'q', ['R'] = 'r', ['S'] = 's',
    ['T'] = 't', ['U'] = 'u', ['V'] = 'v', ['W'] = 'w',
    ['X'] = 'x', ['Y'] = 'y', ['Z'] = 'z', [0x80 ... 0xff] = NON_ASCII,
};

void na_phrases_scratch_release(struct na_phrase_scratch *s)
{
    free(s->tokens);
    free(s->seen);
    *s = (struct na_phrase_scratch){0};
}

struct scan {
    const struct na_phrases *p;
    struct na_phrase_scratch *s;
    const unsigned char *text;
    size_t len, n_tokens, n_seen;
    na_phrase_cb cb;
    void *ctx;
};

/* Was (id, end) reported already in this scan? Marks it when not. The
 * slots are stamped with the scan's generation, so that a scan starts with
 * an empty set without clearing it. -1: out of memory. */
static int seen_before(struct scan *sc, unsigned id, uint32_t end)
{
    struct na_phrase_scratch *s = sc->s;
    size_t mask = s->cap_seen - 1;
    if ((sc->n_seen + 1) * 2 > s->cap_seen) {
        size_t n = s->cap_seen * 2;
        struct na_phrase_seen *v = calloc(n, sizeof(*v));
        if (v == NULL)
            return -1;
        for (size_t i = 0; i <= mask; i++)
            if (s->seen[i].gen == s->gen) {
                size_t k = mix64(s->seen[i].key) & (n - 1);
                while (v[k].gen == s->gen)
                    k = (k + 1) & (n - 1);
                v[k] = s->seen[i];
            }
        free(s->seen);
        s->seen = v;
        s->cap_seen = n;
        mask = n - 1;
    }
    uint64_t key = (uint64_t)id << 32 | end;
    size_t k = mix64(key) & mask;
    for (; s->seen[k].gen == s->gen; k = (k + 1) & mask)
        if (s->seen[k].key == key)
            return 1;
    s->seen[k] = (struct na_phrase_seen){key, s->gen};
    sc->n_seen++;
    return 0;
}

/* The sequences that end at node, matched from token first to token last. */
static int emit(struct scan *sc, uint32_t node, size_t first, size_t last)
{
    const struct node *nd = &sc->p->nodes[node];
    const struct na_phrase_token *tk = sc->s->tokens;
    uint32_t start = tk[first].start;
    for (uint32_t i = 0; i < nd->n_accept; i++) {
        const struct accept *a = &sc->p->accepts[nd->accept_start + i];
        uint32_t end = tk[last].end;
        if (a->trail_len) {
            bool next = last + 1 < sc->n_tokens;
            size_t gap = (next ? tk[last + 1].start : sc->len) - end;
            if (a->trail_bounded ? !next || gap != a->trail_len : gap < a->trail_len)
                continue;
            if (memcmp(sc->text + end, sc->p->exact.b + a->trail_off, a->trail_len) != 0)
                continue;
            end += a->trail_len;
        }
        if (a->exact_len &&
            (end - start != a->exact_len ||
             memcmp(sc->text + start, sc->p->exact.b + a->exact_off, a->exact_len) != 0))
            continue;
        int rc = seen_before(sc, a->id, end);
        if (rc < 0)
            return -1;
        if (rc == 0 && sc->cb(a->id, start, end, sc->ctx))
            return 1;
    }
    return 0;
}

static bool separator_class(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '-' && (s[i] < '\t' || s[i] > '\r'))
            return false;
    return n > 0;
}

/* From node, reached by the tokens up to j - 1, on to token j. */
static int walk(struct scan *sc, uint32_t node, size_t j, size_t first)
{
    const struct na_phrases *p = sc->p;
    const struct na_phrase_token *tk = sc->s->tokens;
    if (!p->nodes[node].has_children || j >= sc->n_tokens || tk[j].word == 0)
        return 0;
    const unsigned char *sep = sc->text + tk[j - 1].end;
    size_t sep_len = tk[j].start - tk[j - 1].end;
    uint32_t exact_sep = p->space_sep;
    if (sep_len != 1 || sep[0] != ' ') {
        exact_sep = strtab_find(&p->seps, sep, sep_len, hash_bytes(sep, sep_len));
        if (exact_sep)
            exact_sep += SEP_ID_CLASS;
    }
    uint32_t sep_ids[2] = {exact_sep, separator_class(sep, sep_len) ? SEP_ID_CLASS : 0};
    for (int k = 0; k < 2; k++) {
        if (sep_ids[k] == 0)
            continue;
        uint32_t child = edge_find(p, edge_key(node, tk[j].word, sep_ids[k]));
        if (child == 0)
            continue;
        int rc = emit(sc, child, first, j);
        if (rc == 0)
            rc = walk(sc, child, j + 1, first);
        if (rc)
            return rc;
    }
    return 0;
}

/* Cuts the text into tokens, each with its folded word's id: one pass, in
 * which each word is folded and hashed as it is read, then looked up once
 * (not at all when it is longer than any word of a phrase). */
static int tokenize(struct scan *sc, size_t len)
{
    const struct na_phrases *p = sc->p;
    struct na_phrase_scratch *s = sc->s;
    const unsigned char *t = sc->text;

    if (s->cap_tokens < len / 2 + 1) {
        size_t ncap = len / 2 + 1; /* a token and a gap take two bytes */
        struct na_phrase_token *v = realloc(s->tokens, ncap * sizeof(*v));
        if (v == NULL)
            return -1;
        s->tokens = v;
        s->cap_tokens = ncap;
    }
    /* Locals, so that the stores through byte pointers do not make the
     * compiler load them again for every word. */
    struct na_phrase_token *tokens = s->tokens;
    const uint32_t *slots = p->words.slots;
    const struct strtab_entry *entries = p->words.v;
    const char *pool = p->words.pool.b;
    const size_t mask = p->words.mask, max_word = p->max_word_len;
    size_t n = 0;

    for (size_t i = 0; i < len;) {
        unsigned char f = FOLD[t[i]];
        if (f == 0) { /* ASCII punctuation or space: most gaps are one */
            i++;
            continue;
        }
        if (f == NON_ASCII && !na_utf8_letter_at(t, i, len)) {
            i += na_utf8_char_len(t[i]);
            continue;
        }
        size_t start = i, bl = 0;
        /* Every folded byte ANDed: a lower-case letter has bits 0x40 and
         * 0x20, a digit lacks 0x40, '_' lacks 0x20 (and a non-ASCII
         * character clears it all), so the word is ASCII letters alone when
         * both survive. */
        unsigned char all = 0xff;
        uint64_t h = HASH_SEED;
        unsigned char buf[MAX_WORD_LEN];
        /* Each byte of the folded word goes into buf and the hash. */
        for (;;) {
            if (f != NON_ASCII) {
                all &= f;
                h = HASH_STEP(h, f);
                buf[bl & (MAX_WORD_LEN - 1)] = f;
                bl++;
                i++;
            } else {
                if (!na_utf8_letter_at(t, i, len))
                    break;
                all = 0;
                unsigned char fc[4];
                size_t fl, k = fold_char(t + i, len - i, fc, &fl);
                for (size_t b = 0; b < fl; b++, bl++) {
                    h = HASH_STEP(h, fc[b]);
                    buf[bl & (MAX_WORD_LEN - 1)] = fc[b];
                }
                i += k;
            }
            if (i == len || (f = FOLD[t[i]]) == 0)
                break;
        }
        uint32_t id = 0, root = 0;
        if (bl <= max_word) {
            for (size_t k = slot_of(h) & mask; slots[k]; k = (k + 1) & mask) {
                const struct strtab_entry *e = &entries[slots[k] - 1];
                if (e->hash == h && e->len == bl && !memcmp(pool + e->off, buf, bl)) {
                    id = slots[k];
                    root = e->root;
                    break;
                }
            }
        }
        tokens[n++] = (struct na_phrase_token){(uint32_t)start, (uint32_t)i, id, root,
                                               (all & 0x60) == 0x60 ? h : 0};
    }
    sc->n_tokens = n;
    return 0;
}

const struct na_phrase_token *na_phrases_tokens(const struct na_phrase_scratch *s,
                                                const char *text, size_t len, size_t *n)
{
    if (s->tokens_of == NULL || s->tokens_of != text || s->tokens_len != len)
        return NULL;
    *n = s->n_tokens;
    return s->tokens;
}

int na_phrases_scan(const struct na_phrases *p, struct na_phrase_scratch *s,
                    const char *text, size_t len, na_phrase_cb cb, void *ctx)
{
    struct scan sc = {p, s, (const unsigned char *)text, len, 0, 0, cb, ctx};

    s->tokens_of = NULL;
    if (p->n_accepts == 0 || len == 0)
        return 0;
    if (s->seen == NULL) {
        if ((s->seen = calloc(256, sizeof(*s->seen))) == NULL)
            return -1;
        s->cap_seen = 256;
    }
    if (++s->gen == 0) { /* wrapped: old stamps could pass for new */
        memset(s->seen, 0, s->cap_seen * sizeof(*s->seen));
        s->gen = 1;
    }
    if (tokenize(&sc, len) < 0)
        return -1;
    s->tokens_of = text;
    s->tokens_len = len;
    s->n_tokens = sc.n_tokens;
    for (size_t i = 0; i < sc.n_tokens; i++) {
        const struct na_phrase_token *tk = &s->tokens[i];
        if (tk->root == 0)
            continue;
        int rc = p->nodes[tk->root].n_accept ? emit(&sc, tk->root, i, i) : 0;
        if (rc == 0 && p->nodes[tk->root].has_children)
            rc = walk(&sc, tk->root, i + 1, i);
        if (rc)
            return rc;
    }
    return 0;
}
