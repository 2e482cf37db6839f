/* newsalert lint: warnings about rules that load but do not do what their
 * author meant: patterns that match empty text or repeat without bound,
 * weight 0, and terms that can never fire (vetoed by an exclusion of their
 * own tag on their own text, or duplicates of an earlier term). */
#include <errno.h>
#include <getopt.h>
#include <hs.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newsalert.h"

static void lint_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert lint RULES_DIR|RULES_FILE [OPTION]...\n"
        "Check rules for patterns that can match empty text, unbounded repeats,\n"
        "weight 0, and terms that can never fire: vetoed by an exclusion of their tag\n"
        "whenever they match their own phrase, or the same as an earlier term.\n"
        "Exits 0 when clean, 1 on warnings, 65 when the rules do not load.\n"
        "  -a, --actors FILE   actors file (default DIR/../actors.yaml)\n"
        "      --paths         also show, for every term, whether it is matched as\n"
        "                      a phrase on word tokens or as a regex by Vectorscan\n"
        "                      (and why), and how many of each there are\n"
        "  -q, --quiet         print only the count\n"
        "  -h, --help          show this help\n");
}

struct lint {
    bool quiet, paths;
    unsigned warnings;
};

/* --paths: the matcher each term went to. A near term's parts are listed
 * one by one; the actors are counted, not listed. */
static void show_paths(const struct na_ruleset *rs)
{
    size_t np = na_ruleset_pattern_count(rs);
    size_t n[2][2] = {{0, 0}, {0, 0}}; /* [actor][on tokens] */
    for (size_t i = 0; i < np; i++) {
        const struct na_pattern *p = na_ruleset_pattern(rs, (unsigned)i);
        n[p->kind == NA_PAT_ACTOR][p->on_tokens]++;
        if (p->kind == NA_PAT_ACTOR)
            continue;
        const struct na_tag *tag = na_ruleset_tag(rs, p->tag);
        const struct na_term *t =
            p->kind == NA_PAT_TERM ? &tag->terms[p->index] : &tag->excludes[p->index];
        printf("%s:%d: %s: %s '%s': %s%s\n", t->file, t->line, tag->name,
               p->kind == NA_PAT_TERM ? "term" : "exclude",
               t->n_parts ? t->parts[p->part] : t->source,
               p->on_tokens ? "phrases" : "regex, ",
               p->on_tokens ? "" : p->why_regex);
    }
    printf("paths: %zu of %zu term patterns and %zu of %zu actor aliases on word tokens\n",
           n[0][1], n[0][0] + n[0][1], n[1][1], n[1][0] + n[1][1]);
}

static void warn_term(struct lint *l, const struct na_tag *tag, const struct na_term *t,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void warn_term(struct lint *l, const struct na_tag *tag, const struct na_term *t,
                      const char *fmt, ...)
{
    va_list ap;

    l->warnings++;
    if (l->quiet)
        return;
    printf("%s:%d: %s: '%s': ", t->file, t->line, tag->name, t->source);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static bool is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c >= 0x80;
}

/* A repeated atom that can only take word characters: a word character,
 * \d, \w, or a class of nothing else. */
static bool word_atom(const char *a, size_t n)
{
    if (n == 1)
        return is_word_byte((unsigned char)a[0]);
    if (a[0] == '\\')
        return n == 2 && (a[1] == 'd' || a[1] == 'w');
    if (a[0] != '[' || a[1] == '^')
        return false;
    for (size_t i = 1; i + 1 < n; i++) {
        if (a[i] == '\\') {
            if (a[i + 1] != 'd' && a[i + 1] != 'w')
                return false;
            i++;
        } else if (a[i] == '-' && i > 1 && i + 2 < n) {
            continue; /* a range between two word characters, checked as ends */
        } else if (!is_word_byte((unsigned char)a[i])) {
            return false;
        }
    }
    return true;
}

/* Vectorscan says only that a match has no maximum width. That is harmless
 * when every unbounded repeat stays inside one word ("cop\d*",
 * "[A-Z][a-z]+"), as the word's end ends it; it is worth a warning when a
 * repeat can cross spaces and punctuation ('.+', '\s+', '[^.]*') or
 * repeats a group. Conservative: anything not understood is a warning. */
static bool repeats_stay_in_words(const char *e)
{
    const char *atom = NULL;
    size_t atom_len = 0;

    for (const char *p = e; *p;) {
        const char *start = p;
        if (*p == '*' || *p == '+' || *p == '{') {
            bool unbounded = *p != '{';
            if (*p == '{') {
                const char *close = strchr(p, '}');
                if (close == NULL)
                    return false;
                unbounded = close[-1] == ',';
                p = close;
            }
            p++;
            if (*p == '?' || *p == '+')
                p++;
            if (unbounded && (atom == NULL || !word_atom(atom, atom_len)))
                return false;
            atom = NULL;
            continue;
        }
        if (*p == '\\') {
            p += p[1] ? 2 : 1;
        } else if (*p == '[') {
            p++;
            if (*p == '^')
                p++;
            if (*p == ']')
                p++;
            while (*p && *p != ']')
                p += *p == '\\' && p[1] ? 2 : 1;
            if (*p)
                p++;
        } else if (*p == '(' || *p == '|' || *p == '?') {
            p++;
            atom = NULL;
            continue;
        } else {
            p++; /* ')' too: a repeated group is not a word atom */
        }
        atom = start;
        atom_len = (size_t)(p - start);
    }
    return true;
}

/* Vectorscan's view of one expression, as the ruleset compiles it (a regex
 * as written, with its outer \b; a phrase is a literal with word
 * boundaries, which cannot repeat or be empty unless it is only a '*'). */
static void check_expr(struct lint *l, const struct na_tag *tag, const struct na_term *t,
                       const char *expr)
{
    hs_expr_info_t *info = NULL;
    hs_compile_error_t *cerr = NULL;
    unsigned flags = HS_FLAG_UTF8 | (t->case_sensitive ? 0 : HS_FLAG_CASELESS);

    if (hs_expression_info(expr, flags, &info, &cerr) != HS_SUCCESS) {
        warn_term(l, tag, t, "Vectorscan: %s", cerr ? cerr->message : "not accepted");
        hs_free_compile_error(cerr);
        return;
    }
    if (info->min_width == 0)
        warn_term(l, tag, t, "can match empty text");
    else if (info->max_width == UINT_MAX && !repeats_stay_in_words(expr))
        warn_term(l, tag, t,
                  "an unbounded repeat that a word does not end: a match can run on "
                  "without limit");
    free(info);
}

static void check_phrase(struct lint *l, const struct na_tag *tag,
                         const struct na_term *t)
{
    if (strspn(t->source, " -*") == strlen(t->source))
        warn_term(l, tag, t, "can match empty text (a phrase of no words)");
}

/* A phrase's own text with the tagger: does its tag veto it? */
static void check_self(struct lint *l, struct na_tagger *tg, const struct na_ruleset *rs,
                       unsigned tag_i, const struct na_term *t)
{
    const struct na_tag *tag = na_ruleset_tag(rs, tag_i);
    char text[1024];
    struct na_error err;
    const struct na_result *res;

    if (t->is_regex || t->n_parts)
        return;
    /* "pledg*" stands for any ending: try the bare stem plus "e". */
    size_t n = 0;
    for (const char *s = t->source; *s && n + 2 < sizeof(text); s++)
        text[n++] = *s == '*' ? 'e' : *s;
    text[n] = '\0';
    if (na_tagger_tag(tg, "", 0, text, n, &res, &err) < 0)
        return;
    for (size_t i = 0; i < res->n_matches; i++) {
        const struct na_match *m = &res->matches[i];
        if (m->tag != tag_i || m->exclusion || m->fate != NA_FATE_VETOED)
            continue;
        const struct na_pattern *p = na_ruleset_pattern(rs, m->pattern);
        if (&tag->terms[p->index] != t)
            continue;
        const struct na_pattern *vp = na_ruleset_pattern(rs, m->veto);
        warn_term(l, tag, t,
                  "can never fire: its own text is vetoed by the exclusion at %s:%d",
                  tag->excludes[vp->index].file, tag->excludes[vp->index].line);
        return;
    }
}

static void check_tag(struct lint *l, struct na_tagger *tg, const struct na_ruleset *rs,
                      unsigned tag_i)
{
    const struct na_tag *tag = na_ruleset_tag(rs, tag_i);
    for (int pass = 0; pass < 2; pass++) {
        const struct na_term *list = pass ? tag->excludes : tag->terms;
        size_t n = pass ? tag->n_excludes : tag->n_terms;
        for (size_t i = 0; i < n; i++) {
            const struct na_term *t = &list[i];
            if (!pass && t->weight == 0)
                warn_term(l, tag, t, "weight 0: it never adds to the score");
            if (t->n_parts)
                for (size_t k = 0; k < t->n_parts; k++)
                    check_expr(l, tag, t, t->parts[k]);
            else if (t->is_regex)
                check_expr(l, tag, t, t->source);
            else
                check_phrase(l, tag, t);
            for (size_t j = 0; j < i; j++)
                if (list[j].is_regex == t->is_regex &&
                    list[j].case_sensitive == t->case_sensitive &&
                    !strcasecmp(list[j].source, t->source)) {
                    warn_term(l, tag, t, "shadowed: the same as the earlier one at %s:%d",
                              list[j].file, list[j].line);
                    break;
                }
            if (!pass)
                check_self(l, tg, rs, tag_i, t);
        }
    }
}

int cmd_lint(int argc, char **argv)
{
    static const struct option opts[] = {{"actors", required_argument, NULL, 'a'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"paths", no_argument, NULL, 'P'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct lint l = {0};
    const char *actors = NULL;
    char actors_buf[4096], dir[] = "/tmp/newsalert-lint-XXXXXX", link_path[4200] = "";
    int c;

    while ((c = getopt_long(argc, argv, "a:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'P':
            l.paths = true;
            break;
        case 'a':
            actors = optarg;
            break;
        case 'q':
            l.quiet = true;
            break;
        case 'h':
            lint_usage(stdout);
            return EXIT_OK;
        default:
            lint_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        tool_error("lint", argc == optind ? "no rules given (a directory or a file)"
                                          : "one rules directory or file only");
        lint_usage(stderr);
        return EXIT_USAGE;
    }
    const char *target = argv[optind], *rules_dir = target;
    struct stat st;
    if (stat(target, &st) < 0) {
        tool_error("lint", "%s: %s", target, strerror(errno));
        return EXIT_FAIL;
    }
    if (!S_ISDIR(st.st_mode)) {
        /* One file: loaded alone, from a directory holding only it. */
        char *abs = realpath(target, NULL);
        if (abs == NULL || mkdtemp(dir) == NULL) {
            tool_error("lint", "%s: %s", target, strerror(errno));
            free(abs);
            return EXIT_FAIL;
        }
        const char *base = strrchr(abs, '/') + 1;
        snprintf(link_path, sizeof(link_path), "%s/%s", dir, base);
        if (symlink(abs, link_path) < 0) {
            tool_error("lint", "%s: %s", link_path, strerror(errno));
            rmdir(dir);
            free(abs);
            return EXIT_FAIL;
        }
        if (actors == NULL) {
            *strrchr(abs, '/') = '\0';
            snprintf(actors_buf, sizeof(actors_buf), "%s/../actors.yaml", abs);
            actors = actors_buf;
        }
        free(abs);
        rules_dir = dir;
    }
    if (actors == NULL) {
        snprintf(actors_buf, sizeof(actors_buf), "%s/../actors.yaml", rules_dir);
        actors = actors_buf;
    }
    struct na_error err;
    struct na_ruleset *rs = na_ruleset_load(rules_dir, actors, &err);
    if (*link_path) {
        unlink(link_path);
        rmdir(dir);
    }
    if (rs == NULL) {
        tool_error("lint", "%s", err.msg);
        return EXIT_DATAERR;
    }
    struct na_tagger_limits tl = {.max_matches = 4096, .max_evidence = 3};
    struct na_tagger *tg = na_tagger_new(rs, &tl, &err);
    if (tg == NULL) {
        tool_error("lint", "%s", err.msg);
        na_ruleset_free(rs);
        return EXIT_FAIL;
    }
    for (unsigned t = 0; t < na_ruleset_tag_count(rs); t++)
        check_tag(&l, tg, rs, t);
    if (l.paths)
        show_paths(rs);
    printf("%s: %u warning%s\n", target, l.warnings, l.warnings == 1 ? "" : "s");
    na_tagger_free(tg);
    na_ruleset_free(rs);
    return l.warnings ? EXIT_FAIL : EXIT_OK;
}
