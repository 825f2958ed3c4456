/*
 * examples.c: the three example templates a new installation starts with.
 *
 * They are seeded once per database (a `meta` row remembers it), so deleting
 * them is permanent. The lists go through the same CSV importer users'
 * uploads do, which keeps the examples honest about what the importer takes.
 */
#include "store/examples.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"
#include "store/templates.h"
#include "util/log.h"
#include "util/template_items.h"
#include "util/xalloc.h"

static const char *const ranks[] = {"Ace", "2", "3", "4", "5", "6", "7",
                                    "8", "9", "10", "Jack", "Queen", "King"};
static const struct {
    const char *name, *symbol, *colour;
} suits[] = {{"Spades", "♠", "black"}, {"Hearts", "♥", "red"},
             {"Diamonds", "♦", "red"}, {"Clubs", "♣", "black"}};

static char *deck_csv(void)
{
    struct strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "card,rank,suit,symbol,colour\n");
    for (size_t s = 0; s < 4; s++)
        for (size_t r = 0; r < 13; r++)
            sb_printf(&sb, "%s of %s,%s,%s,%s,%s\n", ranks[r], suits[s].name, ranks[r],
                      suits[s].name, suits[s].symbol, suits[s].colour);
    sb_puts(&sb, "Red Joker,Joker,none,★,red\nBlack Joker,Joker,none,★,black\n");
    return sb_detach(&sb, NULL);
}

static const char tarot_csv[] =
    "number,name,keywords\n"
    "0,The Fool,\"beginnings, innocence, a leap of faith\"\n"
    "I,The Magician,\"willpower, skill, manifestation\"\n"
    "II,The High Priestess,\"intuition, mystery, the subconscious\"\n"
    "III,The Empress,\"abundance, nature, nurturing\"\n"
    "IV,The Emperor,\"authority, structure, a father figure\"\n"
    "V,The Hierophant,\"tradition, teaching, belief\"\n"
    "VI,The Lovers,\"love, union, choices\"\n"
    "VII,The Chariot,\"victory, control, determination\"\n"
    "VIII,Strength,\"courage, patience, a gentle lion\"\n"
    "IX,The Hermit,\"solitude, a lantern, inner guidance\"\n"
    "X,Wheel of Fortune,\"cycles, fate, turning points\"\n"
    "XI,Justice,\"fairness, truth, the scales\"\n"
    "XII,The Hanged Man,\"surrender, a new perspective, pause\"\n"
    "XIII,Death,\"endings, transformation, renewal\"\n"
    "XIV,Temperance,\"balance, moderation, mixing waters\"\n"
    "XV,The Devil,\"bondage, temptation, shadow\"\n"
    "XVI,The Tower,\"sudden upheaval, lightning, revelation\"\n"
    "XVII,The Star,\"hope, serenity, starlight\"\n"
    "XVIII,The Moon,\"illusion, dreams, a winding path\"\n"
    "XIX,The Sun,\"joy, warmth, success\"\n"
    "XX,Judgement,\"rebirth, a trumpet call, reckoning\"\n"
    "XXI,The World,\"completion, wholeness, a dancing figure\"\n";

static const char zodiac_csv[] =
    "sign,symbol,dates,element\n"
    "Aries,♈,March 21 - April 19,fire\n"
    "Taurus,♉,April 20 - May 20,earth\n"
    "Gemini,♊,May 21 - June 20,air\n"
    "Cancer,♋,June 21 - July 22,water\n"
    "Leo,♌,July 23 - August 22,fire\n"
    "Virgo,♍,August 23 - September 22,earth\n"
    "Libra,♎,September 23 - October 22,air\n"
    "Scorpio,♏,October 23 - November 21,water\n"
    "Sagittarius,♐,November 22 - December 21,fire\n"
    "Capricorn,♑,December 22 - January 19,earth\n"
    "Aquarius,♒,January 20 - February 18,air\n"
    "Pisces,♓,February 19 - March 20,water\n";

struct example {
    const char *name, *description, *prompt_template, *base_prompt, *style_suffix;
    const char *example_theme, *negative_prompt;
    int width, height;
    const char *loras; /* JSON */
};

static const struct example examples[] = {
    {"Playing Card Deck", "The 52 cards of a standard deck and two jokers.",
     "playing card, the {card}, {colour} {symbol} suit marks, ornate card border, full card face",
     "a single playing card illustration", "highly detailed, crisp print, centered composition",
     "steampunk", "blurry, cropped, text artifacts, extra cards", 512, 720,
     "[{\"name\": \"playing_card_frame\", \"weight\": 0.6}]"},
    {"Tarot Major Arcana", "The 22 trumps of the tarot, 0 (The Fool) to XXI (The World).",
     "tarot card {number}, {name}, symbolising {keywords}, decorative border with the title {name}",
     "a tarot card illustration", "rich symbolism, vertical composition",
     "art nouveau", "blurry, deformed hands, watermark", 512, 896, "[]"},
    {"Zodiac Signs", "The twelve signs of the western zodiac.",
     "zodiac sign {sign} {symbol}, {element} element, born {dates}, emblem in a circular frame",
     "an astrological emblem", "symmetrical, celestial background",
     "stained glass", "blurry, low contrast, watermark", 512, 768, "[]"},
};

static const char SQL_SEEDED[] = "SELECT 1 FROM meta WHERE key = 'examples_seeded'";
static const char SQL_MARK[] =
    "INSERT INTO meta (key, value) VALUES ('examples_seeded', strftime('%Y-%m-%dT%H:%M:%SZ','now'))";

static sf_status insert_example(const struct example *ex, const char *csv)
{
    json_t *columns, *items;
    char err[256];
    if (template_items_from_csv(csv, strlen(csv), &columns, &items, err, sizeof(err)) != SF_OK) {
        log_error("examples: %s: %s", ex->name, err);
        return SF_EINTERNAL;
    }
    json_t *row = json_pack("{ss ss ss ss ss ss ss si si so so so}", "name", ex->name,
                            "description", ex->description, "prompt_template", ex->prompt_template,
                            "base_prompt", ex->base_prompt, "style_suffix", ex->style_suffix,
                            "example_theme", ex->example_theme, "negative_prompt", ex->negative_prompt,
                            "width", ex->width, "height", ex->height,
                            "loras", json_loads(ex->loras, 0, NULL),
                            "csv_columns", columns, "csv_items", items);
    long long id;
    sf_status st = templates_insert(row, "setforge", &id);
    json_decref(row);
    return st;
}

sf_status examples_seed(int *seeded)
{
    *seeded = 0;
    sf_status st = db_begin();
    if (st != SF_OK)
        return st;
    sqlite3_stmt *q = db_stmt(SQL_SEEDED);
    int done = sqlite3_step(q) == SQLITE_ROW;
    db_done(q);
    if (done) {
        db_rollback();
        return SF_OK;
    }
    char *deck = deck_csv();
    const char *lists[] = {deck, tarot_csv, zodiac_csv};
    for (size_t i = 0; i < 3 && st == SF_OK; i++)
        st = insert_example(&examples[i], lists[i]);
    free(deck);
    if (st == SF_OK) {
        q = db_stmt(SQL_MARK);
        if (sqlite3_step(q) != SQLITE_DONE)
            st = SF_EINTERNAL;
        db_done(q);
    }
    if (st != SF_OK) {
        db_rollback();
        return st;
    }
    *seeded = 1;
    return db_commit();
}
