/* newsalert tag: the daemon's tagger, offline, over a recorded feed or JSON
 * lines; --explain shows why each tag fired or did not. */
#include <getopt.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/alert.h"
#include "newsalert/article.h"
#include "newsalert/tagger.h"
#include "newsalert.h"

static void tag_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: newsalert tag FILE|- [OPTION]...\n"
        "Tag the articles of a recorded feed or a JSON-lines file (- for JSON lines on\n"
        "stdin) with the daemon's rules, and print the alerts as JSON lines.\n"
        "The daemon's own path: its limits, dedup (a revision's alert names the\n"
        "earlier one in update_of) and tagging, so the alerts are the ones newsalertd\n"
        "publishes for the same input, seq counted from 1. The summary on stderr gives\n"
        "the tagger's throughput over the CPU time of the tagging alone.\n"
        "  -e, --explain       for every article, show each tag's matches, weights,\n"
        "                      vetoes, score and verdict\n" TOOL_RULES_HELP
        "  -q, --quiet         print only the summary\n"
        "  -h, --help          show this help\n");
}

static const char *text_of(enum na_field f, const char *headline, const char *body)
{
    return f == NA_FIELD_HEADLINE ? headline : body;
}

void tool_explain(FILE *out, const struct na_ruleset *rs, const struct na_result *res,
                  const char *headline, const char *body)
{
    for (unsigned t = 0; t < res->n_tags; t++) {
        const struct na_tag *def = na_ruleset_tag(rs, t);
        const struct na_tag_result *r = &res->tags[t];
        fprintf(out, "  %s: score %.2f, threshold %.2f -> %s", def->name, r->score,
                def->threshold, r->fired ? "FIRES" : "does not fire");
        if (r->fired)
            fprintf(out, " (confidence %.2f, %s)", r->confidence,
                    na_priority_name(r->priority));
        fputc('\n', out);
        if (res->model)
            tool_explain_model(out, res, t, headline, body);
        for (size_t e = 0; r->fired && e < r->n_evidence; e++) {
            const struct na_evidence *ev = &r->evidence[e];
            const char *text = text_of(ev->field, headline, body);
            int len = (int)(ev->end - ev->start) > 160 ? 160 : (int)(ev->end - ev->start);
            fprintf(out, "    evidence %s%s \"%.*s\"\n", na_field_name(ev->field),
                    ev->term_pattern == NA_EVIDENCE_MODEL ? " (model)" : "", len,
                    text + ev->start);
        }
        for (size_t i = 0; i < res->n_matches; i++) {
            const struct na_match *m = &res->matches[i];
            if (m->tag != t)
                continue;
            const struct na_pattern *p = na_ruleset_pattern(rs, m->pattern);
            const struct na_term *term =
                m->exclusion ? &def->excludes[p->index] : &def->terms[p->index];
            const char *text = text_of(m->field, headline, body);
            int len = (int)(m->end - m->start);
            if (len > 60)
                len = 60;
            if (m->exclusion) {
                fprintf(out, "    exclusion  %-8s \"%.*s\"  (%s:%d)\n",
                        na_field_name(m->field), len, text + m->start, term->file,
                        term->line);
                continue;
            }
            fprintf(out, "    %-10s %-8s \"%.*s\"  weight %.2f", na_fate_name(m->fate),
                    na_field_name(m->field), len, text + m->start, term->weight);
            if (m->fate == NA_FATE_COUNTED)
                fprintf(out, " -> +%.2f", m->contribution);
            else if (m->fate == NA_FATE_NO_CONTEXT)
                fprintf(out, " (needs an actor in the %s)",
                        term->context == NA_CONTEXT_SENTENCE ? "sentence" : "article");
            else if (m->fate == NA_FATE_VETOED) {
                const struct na_pattern *vp = na_ruleset_pattern(rs, m->veto);
                fprintf(out, " (vetoed by %s:%d)", def->excludes[vp->index].file,
                        def->excludes[vp->index].line);
            }
            fprintf(out, "  (%s:%d)\n", term->file, term->line);
        }
    }
    if (res->n_actors) {
        fprintf(out, "  actors:");
        for (size_t i = 0; i < res->n_actors; i++)
            fprintf(out, " %s(%u)", na_ruleset_actor(rs, res->actors[i].actor)->code,
                    res->actors[i].mentions);
        fputc('\n', out);
    }
    if (res->truncated)
        fprintf(out, "  (match limit reached: the rest of the text was not scanned)\n");
}

static int cmp_hash(const void *a, const void *b)
{
    const struct na_feature *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

struct contribution {
    const struct na_feature *f; /* its first occurrence */
    double weight, value;
};

static int cmp_contribution(const void *a, const void *b)
{
    const struct contribution *x = a, *y = b;
    double ax = fabs(x->weight * x->value), ay = fabs(y->weight * y->value);
    if (ax != ay)
        return ax > ay ? -1 : 1;
    return x->f->hash < y->f->hash ? -1 : x->f->hash > y->f->hash;
}

void tool_explain_model(FILE *out, const struct na_result *res, unsigned tag,
                        const char *headline, const char *body)
{
    const struct na_model *m = res->model;
    const struct na_tag_result *r = &res->tags[tag];
    size_t n = res->n_features, k = 0;
    struct na_feature *f = malloc((n ? n : 1) * sizeof(*f));
    struct contribution *c = malloc((n ? n : 1) * sizeof(*c));

    fprintf(out, "    model %s: decision %+.2f, probability %.2f, fires at %.2f\n",
            na_model_version(m), r->decision, r->confidence, na_model_threshold(m, tag));
    if (f == NULL || c == NULL) {
        free(f);
        free(c);
        return;
    }
    memcpy(f, res->features, n * sizeof(*f));
    qsort(f, n, sizeof(*f), cmp_hash);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double v = 0;
        while (j < n && f[j].hash == f[i].hash)
            v += f[j++].value;
        double w = na_model_weight(m, tag, f[i].hash);
        v *= na_model_value(m, res->model_values, f[i].hash);
        if (w != 0)
            c[k++] = (struct contribution){&f[i], w, v};
        i = j;
    }
    qsort(c, k, sizeof(*c), cmp_contribution);
    for (size_t i = 0; i < k && i < 8; i++) {
        const struct na_feature *fi = c[i].f;
        fprintf(out, "      %+.3f  words \"%.*s\"  (weight %+.2f x %.2f)\n",
                c[i].weight * c[i].value, (int)(fi->end - fi->start),
                text_of((enum na_field)fi->field, headline, body) + fi->start,
                c[i].weight, c[i].value);
    }
    free(f);
    free(c);
}

void tool_reason(char *buf, size_t len, const struct na_ruleset *rs,
                 const struct na_result *res, unsigned tag, const char *headline,
                 const char *body)
{
    const struct na_tag *def = na_ruleset_tag(rs, tag);
    const struct na_tag_result *r = &res->tags[tag];
    int n = snprintf(buf, len, "score %.2f vs %.2f", r->score, def->threshold);
    size_t used = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < res->n_matches && used + 40 < len; i++) {
        const struct na_match *m = &res->matches[i];
        if (m->tag != tag || m->exclusion)
            continue;
        const char *text = text_of(m->field, headline, body);
        int l = (int)(m->end - m->start) > 30 ? 30 : (int)(m->end - m->start);
        n = snprintf(buf + used, len - used, "; \"%.*s\" %s", l, text + m->start,
                     m->fate == NA_FATE_COUNTED ? "counted" : na_fate_name(m->fate));
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int cmd_tag(int argc, char **argv)
{
    static const struct option opts[] = {
        {"explain", no_argument, NULL, 'e'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},    TOOL_RULES_LONG,
        {NULL, 0, NULL, 0}};
    struct tool_rules_opts ro = {0};
    bool explain = false, quiet = false;
    int c;

    while ((c = getopt_long(argc, argv, "eqh" TOOL_RULES_SHORT, opts, NULL)) != -1) {
        if (tool_rules_option(c, optarg, &ro))
            continue;
        switch (c) {
        case 'e':
            explain = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            tag_usage(stdout);
            return EXIT_OK;
        default:
            tag_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        tool_error("tag", optind == argc ? "no input given (FILE, or - for stdin)"
                                         : "one input only, got '%s' too",
                   argv[optind + 1 < argc ? optind + 1 : optind]);
        tag_usage(stderr);
        return EXIT_USAGE;
    }
    ro.keep_features = explain; /* the model's part of the explanation */
    struct tool_pipeline p;
    if (tool_pipeline_open(&p, "tag", &ro) < 0)
        return EXIT_FAIL;
    struct article_source *src = article_source_open(argv[optind], "tag");
    if (src == NULL) {
        tool_pipeline_close(&p);
        return EXIT_FAIL;
    }
    struct article_item item;
    int rc, status = EXIT_OK;
    while ((rc = article_source_next(src, &item)) != 0) {
        if (rc < 0) {
            p.messages++;
            p.rejected++;
            continue;
        }
        Newsalert__V1__Article *a;
        Newsalert__V1__Alert *al;
        const struct na_result *res;
        char msg[256];
        enum tool_verdict v = tool_pipeline_handle(&p, "tag", &item, &a, &res, &al, msg,
                                                   sizeof(msg));
        if (v == TOOL_ERROR) {
            status = EXIT_FAIL;
            na_article_free(a);
            break;
        }
        if (explain && v == TOOL_REJECTED)
            printf("message %llu: rejected (%s): %s\n", (unsigned long long)p.messages,
                   na_reject_name(p.why), msg);
        if (explain && v == TOOL_DUPLICATE)
            printf("article %s (%s, revision %u): a duplicate, dropped\n", a->id,
                   a->source ? a->source : "", a->revision);
        if (explain && res) {
            printf("article %s: %s\n", a->id, a->headline ? a->headline : "");
            tool_explain(stdout, p.rules.rs, res, a->headline ? a->headline : "",
                         a->body ? a->body : "");
        }
        if (al && !quiet && !explain) {
            json_t *o = na_alert_to_json(al);
            char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
            if (s)
                puts(s);
            free(s);
            json_decref(o);
        }
        na_article_free(a);
    }
    if (article_source_damaged(src))
        status = EXIT_FAIL;
    tool_pipeline_summary(&p, "tag");
    article_source_close(src);
    tool_pipeline_close(&p);
    return status;
}
