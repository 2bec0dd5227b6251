"""The vocabularies of the sample corpus: sentence templates and word lists, all written for this project
(the brands, towns and people are invented). `sample_corpus.generate` fills the templates.

Template syntax: `{slot}` is filled from the slots a generator draws (brand, colour, size, ...);
`<a|b|c>` picks one of the options.
"""

# fmt: off
# ---------------------------------------------------------------------------------------------------
# Shopping vocabulary
# ---------------------------------------------------------------------------------------------------

BRANDS = [
    "Norvik", "Auralis", "Kestrelline", "BrightNest", "Tundra Peak", "Velora", "Quillon", "Marlowe Home",
    "Zentrix", "Halden", "Copperleaf", "Solvane", "Ridgeback", "Lumio", "PureFold", "Oakhurst", "Vantor",
    "Ember & Ash", "Fjordline", "Calyx", "Bramblewood", "Orbitek", "Sunmeadow", "Trailwise", "Corvale",
]
COLOURS = [
    "black", "white", "navy blue", "charcoal grey", "forest green", "burgundy", "sand beige", "sky blue",
    "coral", "matte black", "rose gold", "olive", "slate", "ivory", "mustard yellow", "teal", "graphite",
]

# category -> product nouns, materials, size strings, category-specific features and uses
CATEGORIES: dict[str, dict[str, list[str]]] = {
    "electronics": {
        "products": ["wireless earbuds", "bluetooth speaker", "USB-C charger", "power bank",
                     "mechanical keyboard", "gaming mouse", "1080p webcam", "smart watch", "HDMI cable",
                     "portable SSD", "noise-cancelling headphones", "LED desk lamp"],
        "materials": ["aluminium alloy", "ABS plastic", "tempered glass", "braided nylon", "silicone"],
        "sizes": ["{n}mAh", "{w}W", "{gb}GB", "{tb}TB", "{ft} ft", "{m} m"],
        "features": ["Bluetooth 5.3 pairing", "fast charging over USB-C", "up to {h} hours of battery life",
                     "IPX{ip} water resistance", "a built-in microphone with echo cancellation",
                     "plug-and-play setup on Windows, macOS and Linux", "a low-latency gaming mode",
                     "an overcharge and short-circuit protection chip", "Wi-Fi 6 support",
                     "a 2.4 GHz receiver stored in the base"],
        "uses": ["video calls", "the daily commute", "gaming sessions", "travel", "the home office",
                 "workouts at the gym"],
    },
    "kitchen": {
        "products": ["frying pan", "chef's knife", "cutting board", "electric kettle",
                     "food storage containers", "burr coffee grinder", "silicone baking mat",
                     "cast iron skillet", "measuring cup set", "insulated water bottle", "dutch oven"],
        "materials": ["stainless steel", "bamboo", "borosilicate glass", "cast iron", "BPA-free plastic",
                      "ceramic", "food-grade silicone", "high-carbon steel"],
        "sizes": ["{inch}-inch", "{qt} quart", "{oz} oz", "{ml} ml", "{l} L", "set of {pack}"],
        "features": ["a non-stick ceramic coating", "a stay-cool handle", "dishwasher-safe parts",
                     "an induction-ready base", "leak-proof lids", "an automatic shut-off",
                     "double-wall vacuum insulation", "a full-tang forged blade", "oven-safe to {deg} F",
                     "a juice groove around the edge"],
        "uses": ["weeknight dinners", "meal prep", "baking", "the morning coffee", "camping trips",
                 "school lunches"],
    },
    "apparel": {
        "products": ["crew neck t-shirt", "running shoes", "rain jacket", "wool socks", "slim-fit jeans",
                     "pullover hoodie", "yoga leggings", "baseball cap", "puffer vest", "linen shirt"],
        "materials": ["100% cotton", "merino wool", "recycled polyester", "nylon", "cotton-spandex blend",
                      "stretch denim", "brushed fleece", "organic linen"],
        "sizes": ["size {letter}", "US {shoe}", "waist {waist} x length {length}", "pack of {pack}"],
        "features": ["a relaxed fit", "moisture-wicking fabric", "a breathable mesh upper",
                     "a packable hood", "flatlock seams", "a tagless neckline", "a cushioned midsole",
                     "reinforced heel and toe", "two zippered hand pockets", "an adjustable strap closure"],
        "uses": ["running", "everyday wear", "hiking", "the office", "lounging at home", "travel days"],
    },
    "home": {
        "products": ["blackout curtains", "memory foam pillow", "throw blanket", "bath towel set",
                     "shower caddy", "fabric storage bins", "area rug", "wall clock", "duvet cover",
                     "bedside lamp"],
        "materials": ["microfiber", "Turkish cotton", "memory foam", "jute", "rust-proof steel",
                      "polyester velvet", "sherpa fleece", "oak veneer"],
        "sizes": ["{w_in} x {h_in} inches", "queen size", "king size", "twin size", "set of {pack}",
                  "{ft} x {ft2} ft"],
        "features": ["a thermal insulated lining", "a machine-washable cover", "a non-slip backing",
                     "silent sweep movement", "hidden corner ties", "a removable bamboo cover",
                     "foldable sides", "an easy-hang rod pocket", "pre-washed softness"],
        "uses": ["the bedroom", "the living room", "a guest room", "small apartments", "the nursery",
                 "the bathroom"],
    },
    "outdoor": {
        "products": ["camping tent", "sleeping bag", "hiking backpack", "yoga mat", "adjustable dumbbells",
                     "trekking poles", "rechargeable headlamp", "hard-sided cooler", "hammock",
                     "folding camp chair"],
        "materials": ["ripstop nylon", "aluminium", "carbon fibre", "TPE foam", "polyester taffeta",
                      "cast iron plates"],
        "sizes": ["{person}-person", "{lb} lb", "{l}0 L", "{mm} mm thick", "{deg2} F comfort rating"],
        "features": ["a rainfly with taped seams", "quick-lock adjustment", "a ventilated back panel",
                     "{lm} lumens with a red night mode", "a compression stuff sack", "a hip belt with pockets",
                     "an anti-slip textured surface", "ice retention for up to {days} days",
                     "a carry bag included"],
        "uses": ["weekend camping", "backpacking", "home workouts", "the beach", "festivals",
                 "early morning trail runs"],
    },
    "beauty": {
        "products": ["facial moisturizer", "mineral sunscreen", "sulfate-free shampoo", "ionic hair dryer",
                     "electric toothbrush", "lip balm", "vitamin C serum", "body wash"],
        "materials": ["hyaluronic acid", "zinc oxide", "shea butter", "aloe vera", "argan oil",
                      "ceramide complex"],
        "sizes": ["{oz} fl oz", "{ml} ml", "pack of {pack}", "SPF {spf}", "{w}00W"],
        "features": ["a fragrance-free formula", "broad spectrum protection", "a two-minute smart timer",
                     "three heat settings and a cool shot", "a lightweight non-greasy finish",
                     "dermatologist-tested ingredients", "a pressure sensor", "a travel-friendly size"],
        "uses": ["sensitive skin", "daily use", "dry hair", "the gym bag", "outdoor days", "the night routine"],
    },
    "toys": {
        "products": ["building blocks set", "jigsaw puzzle", "remote control car", "plush bear",
                     "strategy board game", "wooden train set", "magnetic tiles", "art supply kit"],
        "materials": ["non-toxic ABS", "FSC-certified wood", "soft polyester plush", "recycled cardboard",
                      "washable markers"],
        "sizes": ["{pieces} pieces", "ages {age}+", "{inch}-inch", "{players} players"],
        "features": ["rounded safety edges", "a rechargeable battery with {h} minutes of play",
                     "a storage box with a lid", "illustrated step-by-step instructions",
                     "2.4 GHz control for racing side by side", "a quick-start rule card"],
        "uses": ["family game night", "birthday gifts", "rainy afternoons", "classroom play",
                 "quiet time"],
    },
    "tools": {
        "products": ["cordless drill", "precision screwdriver set", "tape measure", "work gloves",
                     "LED flashlight", "socket wrench set", "stud finder", "laser level"],
        "materials": ["chrome vanadium steel", "rubberised grip", "anodised aluminium", "nitrile coating",
                      "impact-resistant polycarbonate"],
        "sizes": ["{v}V", "{pieces}-piece", "{ft} ft", "size {letter}", "{lm} lumens"],
        "features": ["a brushless motor", "a two-speed gearbox", "a magnetic bit holder",
                     "a locking blade with fraction markings", "an LED work light", "a carrying case",
                     "a self-levelling beam", "touchscreen-compatible fingertips"],
        "uses": ["furniture assembly", "home repairs", "the garage", "electronics repair", "job sites"],
    },
}

TITLE_TEMPLATES = [
    "{brand} {product}, {size}, {colour}",
    "{brand} {product} with {feature_short} - {size} - {colour}",
    "{product_cap} by {brand} ({size}, {colour})",
    "{brand} {adjective} {product} {size} | {material} | {colour}",
    "{brand} {product} {size} {colour} - {adjective} {material} design",
]
ADJECTIVES = ["premium", "compact", "lightweight", "heavy-duty", "ergonomic", "classic", "ultra-slim",
              "eco-friendly", "professional", "everyday", "foldable", "upgraded"]

BULLET_TEMPLATES = [
    "MATERIAL: made of {material} that holds up to {use}.",
    "SPECS: {size}; see the chart in the images before ordering.",
    "COLOUR: {colour}, finished to resist fading.",
    "FEATURES: {feature}.",
    "ALSO: {feature2}.",
    "WHAT'S IN THE BOX: 1 x {product}, 1 x user manual{box_extra}.",
    "WARRANTY: {years}-year limited warranty and friendly customer support from {brand}.",
    "DIMENSIONS: {dim_a} x {dim_b} x {dim_c} cm; weight {grams} g.",
    "GREAT GIFT: a thoughtful pick for {audience}.",
    "EASY CARE: {care}.",
]
AUDIENCES = ["students", "new parents", "busy professionals", "outdoor lovers", "home cooks", "gamers",
             "teens and adults", "anyone moving into a new home", "fitness beginners", "grandparents"]
CARE = ["wipe clean with a damp cloth", "machine wash cold and tumble dry low", "hand wash only",
        "rinse after each use and air dry", "do not bleach", "store in a cool dry place"]

DESCRIPTION_SENTENCES = [
    "The {brand} {product} is <built|made|designed> for {use} and <designed to last|made to last for years|ready for daily use>.",
    "<Crafted|Made|Built> from {material}, it <feels solid without adding bulk|is sturdy yet light|holds its shape>.",
    "We added {feature} because our customers asked for it.",
    "It comes in {colour} and {n_colours} other colours to match your style.",
    "Whether you need it for {use} or {use2}, you can count on the {brand} {product}.",
    "Compared with our previous model, the new version is {pct}% lighter and easier to carry.",
    "Every <unit|order|piece> is <inspected|checked by hand|quality tested> before it leaves our <warehouse|factory|workshop>.",
    "<Order now|Order today|Buy now> and it <ships|is dispatched> within {days} business days.",
    "Pair it with other {brand} accessories for a matching set.",
    "The {size} option is our best seller for {audience}.",
    "Thanks to {feature2}, it works well straight out of the box.",
    "If it is not the right fit, returns are free for {days2} days.",
    "Designed <in-house|in our studio> by the {brand} team and tested for <months|a full year|hundreds of hours> of everyday use.",
    "Its {adjective} profile slips easily into a drawer, bag or cupboard.",
    "Note: <colours|shades> may look slightly different depending on your <screen|monitor|display settings>.",
    "Buy two and save {pct2}% at checkout.",
]

# ---------------------------------------------------------------------------------------------------
# Review vocabulary
# ---------------------------------------------------------------------------------------------------

ASPECTS = {
    "electronics": ["battery life", "sound quality", "connection", "charging speed", "build quality"],
    "kitchen": ["non-stick surface", "handle", "heat distribution", "lid", "blade"],
    "apparel": ["fit", "fabric", "stitching", "sizing", "comfort"],
    "home": ["softness", "colour", "thickness", "stitching", "size"],
    "outdoor": ["weight", "main zipper", "waterproofing", "padding", "setup"],
    "beauty": ["scent", "texture", "packaging", "finish", "brush head"],
    "toys": ["piece quality", "instruction booklet", "durability", "battery", "box"],
    "tools": ["grip", "torque", "case", "accuracy", "battery"],
}
REVIEW_OPENERS = [
    "I bought this {product} for {use} and have <used it|had it> for {weeks} weeks now.",
    "Ordered the {colour} one after my old {product} broke.",
    "Got this as a gift for my {relative}.",
    "I was hesitant at first because of the price, but I went for it.",
    "This is my second {product} from {brand}.",
    "Picked this up during a sale.",
    "Needed a {product} for {use} and this one had good ratings.",
]
REVIEW_POSITIVE = [
    "The {aspect} is <excellent|great|superb>, <better than I expected|much better than my last one|exactly as described>.",
    "<Really|Very|So> happy with the {aspect}<.|, no complaints.|, it impressed me.>",
    "The {aspect} is solid and it feels like it will last.",
    "Arrived {days} days <early|ahead of schedule> and <well packed|in perfect condition|in a sturdy box>.",
    "For the price you really can't beat it.",
    "My {relative} <loves it|is thrilled with it|can't stop talking about it> and uses it <every day|all the time|most weekends>.",
    "<Setup|Getting started|Assembly> took <less than five minutes|no time at all|about ten minutes>.",
    "The {size} size was exactly right.",
    "Looks even better in person, the {colour} is lovely.",
    "Customer service answered my question the same day.",
]
REVIEW_NEGATIVE = [
    "The {aspect} is <disappointing|mediocre|worse than advertised>.",
    "After {weeks} weeks the {aspect} <started to fail|stopped working properly|began to wear out>.",
    "Runs small, I should have ordered one size up.",
    "The box arrived dented and one part was missing.",
    "<Not worth the money|Overpriced for what it is|Too expensive for the quality> in my opinion.",
    "The {aspect} <feels cheap|looks flimsy|seems fragile> compared to the <photos|description|listing>.",
    "The colour is more {colour2} than {colour} in real life.",
    "Instructions were confusing and I had to look up a video.",
    "I had to contact support twice before getting a replacement.",
]
REVIEW_CLOSERS_GOOD = ["Would definitely buy again.", "Highly recommend.", "Five stars from me.",
                       "Already ordered a second one.", "Great value overall."]
REVIEW_CLOSERS_MIXED = ["It does the job, nothing more.", "Okay for occasional use.",
                        "Might work for someone with lower expectations.", "Three stars feels fair."]
REVIEW_CLOSERS_BAD = ["Returning it.", "Would not recommend.", "Save your money.",
                      "Very disappointed with this purchase."]
REVIEW_HEADLINES = {
    5: ["Love it!", "Exactly what I needed", "Best purchase this year", "Fantastic {product}"],
    4: ["Very good, one small issue", "Solid {product}", "Happy overall", "Good value"],
    3: ["It's okay", "Mixed feelings", "Average {product}", "Does the job"],
    2: ["Not great", "Expected more from {brand}", "Some problems"],
    1: ["Broke quickly", "Do not buy", "Waste of money"],
}
RELATIVES = ["wife", "husband", "son", "daughter", "mother", "dad", "roommate", "sister", "brother",
             "grandmother"]

# ---------------------------------------------------------------------------------------------------
# General-domain vocabulary (invented places and people)
# ---------------------------------------------------------------------------------------------------

TOWNS = ["Aldermoor", "Bexley Ford", "Carran", "Dunmere", "Eastwick Hollow", "Fennmouth", "Glasbury",
         "Harlow Cross", "Ivesmere", "Kelbrook", "Lanstow", "Marrick", "Northam Vale", "Oswin Bridge",
         "Penhallow", "Redwater", "Stoke Amery", "Thornby"]
RIVERS = ["the Tavish", "the Orrin", "the Caddel", "the Wenlow", "the Brume", "the Selk"]
FIRST_NAMES = ["Ada", "Tomas", "Helena", "Marcus", "Ines", "Jonah", "Priya", "Edwin", "Lucia", "Owen",
               "Margit", "Samuel", "Noor", "Felix", "Clara", "Rafael", "Wren", "Dmitri"]
SURNAMES = ["Harrow", "Vance", "Okafor", "Lindqvist", "Morrow", "Castellan", "Pryce", "Abernathy",
            "Fairweather", "Kowal", "Delacroix", "Ashdown", "Mbeki", "Thorne"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
SEASONS = ["spring", "summer", "autumn", "winter"]

GENERAL_TOPICS: dict[str, list[str]] = {
    # <a|b|c> picks one option per sentence, so documents on one topic share few word sequences.
    "history": [
        "In the {century} century, {town} grew up around a <ford|mill|ferry crossing|market cross> on {river}.",
        "<Farmers|Drovers|Traders> brought <wool and grain|cattle and cheese|timber and salt> to its weekly "
        "market, and a stone bridge replaced the <ford|ferry|wooden crossing> in {year}.",
        "The town charter, granted in {year2}, allowed the <council|burgesses|abbot> to collect <tolls on the "
        "bridge|rents from the market stalls|a tax on every cart>.",
        "A <fire|flood|storm> in {year3} destroyed much of the <old quarter|harbour|high street>, and the "
        "<streets|houses|warehouses> were rebuilt in <brick|stone|timber>.",
        "Historians still argue about why the <abbey|castle|village> near {town} was abandoned so <suddenly|"
        "quickly|completely>.",
        "Letters kept in the <county archive|cathedral library|family papers> describe a long dispute between "
        "the <millers|fishermen|tenants> and the <bishop|lord of the manor|town council>.",
        "When the <railway|canal|turnpike road> arrived, the population of {town} <doubled|tripled|grew "
        "sharply> within {decades} decades.",
        "{person} kept a <diary|ledger|book of sermons> during the <flood year|long winter|great plague>, "
        "recording <the water rising to the church steps|the price of bread each week|every death in the parish>.",
        "During the <war|revolution|siege>, the <grammar school|town hall|old priory> was turned into "
        "<a hospital|a barracks|a grain store>.",
        "Most of the <medieval walls|old gates|timber houses> were pulled down, but the <north gate|chapel|"
        "market hall> survives.",
        "A survey in {year4} counted {count} households, most of them <tenants of a single estate|"
        "weavers and their families|farm labourers>.",
        "The old <guildhall|corn exchange|customs house> now houses a small museum about the <weavers|"
        "sailors|miners> who once lived there.",
        "Trade declined after {year3}, when <the harbour silted up|a rival town won the market|the wool "
        "trade moved north>.",
        "<Pilgrims|Merchants|Soldiers> travelling to {town2} stopped at the inn by the <bridge|crossroads|"
        "abbey gate>.",
        "Records from {year2} mention a <school|hospital|almshouse> founded by {person}.",
        "The <parish church|town square|old bridge> was <restored|widened|rebuilt> in {year4} with money "
        "raised by <public subscription|a wealthy widow|the railway company>.",
    ],
    "science": [
        "Plants capture light with <chlorophyll|green pigments in their leaves> and use its energy to turn "
        "water and carbon dioxide into <sugar|glucose|stored energy>.",
        "<Oxygen|A great deal of oxygen> is released as a by-product, which is why <forests|oceans of "
        "algae|grasslands> matter for the air we breathe.",
        "Water evaporates from the <oceans|lakes and seas>, condenses into <clouds|droplets around dust> "
        "and falls again as <rain or snow|rain, hail or snow>.",
        "The crust of the Earth is broken into plates that move <a few centimetres|about as fast as "
        "fingernails grow> each year.",
        "Where two plates <collide|meet|grind past each other>, <mountains rise|volcanoes form|the ground "
        "folds> and earthquakes become more frequent.",
        "Sound is a pressure wave, and it travels <about four times faster|much faster> in water than in air.",
        "A vaccine trains the immune system to recognise <a pathogen|a virus|a bacterium> without causing "
        "the disease.",
        "Stars shine because <nuclear fusion|the fusion of light nuclei> in their cores turns hydrogen into helium.",
        "The researchers at {town} University measured the effect in {count} <samples|patients|soil cores|"
        "mice> over {months} months.",
        "Their results suggest that the <mechanism|effect|process> is <more common|more important|less "
        "stable> than earlier studies assumed.",
        "Enzymes speed up <chemical reactions|digestion|the copying of DNA> by lowering the energy needed "
        "to start them.",
        "Bees navigate using <the position of the sun|landmarks and smell> and a sense of polarised light.",
        "<Copper|Silver|Aluminium> conducts electricity well because its outer electrons move freely "
        "through the metal.",
        "Dr {person} cautioned that the <sample was small|study was short|measurements were noisy> and the "
        "findings need to be repeated.",
        "A <telescope|satellite|probe> launched in {year4} <mapped|photographed|measured> the <rings of "
        "Saturn|surface of Mars|dust between the stars>.",
        "<Glaciers|Rivers|Winds> carve valleys over thousands of years, carrying <rock|sand|silt> towards the sea.",
        "The team <grew|cooled|heated> the <crystals|cells|samples> to {count2} degrees and watched how they changed.",
    ],
    "local_news": [
        "{town} council voted on {weekday} to <reopen the library on weekends|extend the cycle lane|repair "
        "the swimming pool|plant trees along the avenue>.",
        "The decision followed a <petition|campaign|public consultation> <signed by|supported by> {count} residents.",
        "Road works on the <high street|ring road|bridge approach> will continue until the end of {season}, "
        "officials said.",
        "Police asked drivers to avoid the <bridge over {river}|town centre|station road> while "
        "<repairs|a water main replacement|resurfacing> <is|are> carried out.",
        "The local <football|cricket|rugby> club won {score} on {weekday}, its <third|fourth|second> victory in a row.",
        "{person}, who <coached the youth team|ran the food bank|led the choir> for {years} years, retired "
        "at the end of the <season|year|summer>.",
        "Heavy rain caused flooding in <low-lying streets|the riverside car park|several basements>, and "
        "volunteers handed out sandbags.",
        "A new <bus route|cycle path|footbridge> linking {town} with {town2} <starts|opens> next month.",
        "The primary school celebrated its {anniversary}th anniversary with a <concert|fair|picnic> in the park.",
        "Residents are invited to a public meeting about the <plans|new housing|parking changes> in the "
        "<town hall|community centre|church hall>.",
        "The mayor said the budget would protect services for <older residents|young families|people with "
        "disabilities>.",
        "Firefighters were called to a <barn blaze|chimney fire|car fire> outside the village late on {weekday} night.",
        "The <annual show|summer fete|winter market> attracted more visitors than last year, organisers said.",
        "A <statue|mural|memorial bench> honouring {person} was unveiled near the <harbour|station|library>.",
        "Plans to close the <post office|bank branch|police station> in {town2} drew <criticism|protests|"
        "a petition> from residents.",
    ],
    "economy_news": [
        "Retail sales rose {pct}% in {season}, according to figures released on {weekday}.",
        "Economists said higher prices for <food and energy|rent and fuel|electricity> continued to squeeze "
        "household budgets.",
        "The central bank kept interest rates <unchanged|on hold> at {rate}%.",
        "Shares in the <largest supermarket chain|biggest carmaker|national airline> fell after it warned "
        "of <weaker profits|falling demand|higher costs>.",
        "Unemployment in the region dropped to its lowest level in {years} years.",
        "Analysts expect inflation to ease <slowly|over the coming year> as <shipping costs|energy prices|"
        "wage growth> return to normal.",
        "Small businesses in {town} said <online competition|higher rents|staff shortages> had changed how they operate.",
        "The government plans to cut the tax on <fuel|energy bills|small businesses> for {months} months.",
        "Exports of <machinery|chemicals|farm produce> grew strongly, helped by demand from neighbouring countries.",
        "Consumer confidence improved for the {count2}th month in a row.",
        "{person}, chief economist at a <city bank|research institute|trade union>, said the figures were "
        "<encouraging but fragile|better than expected|a warning sign>.",
        "Online orders of clothing and electronics grew faster than sales in physical stores.",
        "Customers returned more goods bought online this year, which raised costs for retailers.",
        "House prices <rose|fell|barely moved> in {season}, while the number of sales <fell|recovered>.",
        "The <factory|port|mine> near {town2} announced {count} new jobs after winning a large contract.",
        "Farmers warned that the dry {season} would push up the price of <wheat|milk|vegetables>.",
    ],
    "nature": [
        "In early {season}, the <marshes|mudflats|water meadows> along {river} fill with migrating <geese|"
        "waders|swans>.",
        "Oak trees can live for several centuries and support hundreds of <insect|lichen|bird> species.",
        "Foxes have adapted well to towns, where they feed on scraps and <nest|sleep|raise cubs> under sheds.",
        "The heath turns purple in late summer when the heather flowers.",
        "<Otters|Salmon|Kingfishers> returned to {river} after the water quality improved.",
        "Mushrooms are only the fruiting bodies of fungi that spread underground for metres.",
        "A heron stood motionless in the shallows, waiting for a <fish|frog|eel> to come close.",
        "Volunteers counted {count} <butterflies|birds|bats> of {count2} species on the downs this year.",
        "Hedgerows act as corridors that let <small animals|hedgehogs|dormice> move safely between woods.",
        "The first frost usually arrives in {town} by the middle of {month}.",
        "<Badgers|Deer|Hares> are most active at dusk, when the <fields|woods|lanes> are quiet.",
        "Bluebells carpet the <woods|hillsides|old coppice> in spring, a sign of ancient woodland.",
        "After the storm, <a fallen beech|the flooded meadow|the eroded cliff> became a home for <beetles|"
        "nesting birds|wild flowers>.",
        "Swifts arrive from Africa in {season} and spend almost their whole lives in the air.",
        "The <old quarry|disused railway|former gravel pit> has become a reserve for <orchids|dragonflies|"
        "sand martins>.",
    ],
    "everyday": [
        "On {weekday} morning {person} walked the dog along {river} before work.",
        "The <bakery|greengrocer|café> on the corner had sold out of <rye bread|strawberries|croissants> again.",
        "We spent the afternoon <repainting the fence|clearing the garden|sorting the attic> and arguing about "
        "<the colour|what to keep|who should do what>.",
        "My neighbour brought over a basket of <plums|apples|runner beans> from her garden.",
        "The train was {minutes} minutes late, so I read half a <novel|newspaper|magazine> on the platform.",
        "In the evening we cooked <soup|a curry|pasta> with the last of the vegetables and listened to the radio.",
        "The children built a den out of <blankets|cardboard boxes|sofa cushions> and refused to come down for dinner.",
        "I finally fixed the <squeaking door|dripping tap|wobbly chair> with <a drop of oil|a new washer|some glue>.",
        "It rained all day, so we played <cards|chess|board games> and drank far too much tea.",
        "My grandmother still writes letters by hand and posts them every {weekday}.",
        "After the errands in town we sat by the <harbour|river|fountain> and watched the <boats|ducks|"
        "people> go by.",
        "The new café in {town} is always full on {weekday}s.",
        "At the hardware shop I picked up a tape measure and a box of screws for the shelves.",
        "She ordered a raincoat online, but it came in the wrong size, so she sent it back.",
        "The old kettle finally gave up, and a new one was on the shopping list for {weekday}.",
        "We compared prices at three shops before buying the children new school shoes.",
        "{person} is learning to <play the piano|speak Spanish|bake bread> and practises every evening.",
        "The <bus|ferry|tram> was so crowded that we decided to walk home instead.",
    ],
}

QUERY_TEMPLATES = ["{brand} {product}", "{product} {colour}", "{product} {size}", "{material} {product}",
                   "{adjective} {product} for {use}", "{colour} {product} {brand}"]


NER_TEMPLATES = [
    "[Brand] [Product] , [Size] , [Colour]",
    "The [Brand] [Product] comes in [Colour] and is made of [Material] .",
    "[Product] by [Brand] in [Size] with [Feature]",
    "New [Brand] [Product] - [Material] - [Colour] - [Size]",
    "Looking for a [Colour] [Product] ? This one from [Brand] has [Feature] .",
]
NER_TYPES = {"Brand": "Brand", "Product": "Product", "Size": "Attribute", "Colour": "Attribute",
             "Material": "Attribute", "Feature": "Component"}

__all__ = ["ADJECTIVES", "ASPECTS", "AUDIENCES", "BRANDS", "BULLET_TEMPLATES", "CARE", "CATEGORIES", "COLOURS", "DESCRIPTION_SENTENCES", "FIRST_NAMES", "GENERAL_TOPICS", "NER_TEMPLATES", "NER_TYPES", "QUERY_TEMPLATES", "RELATIVES", "REVIEW_CLOSERS_BAD", "REVIEW_CLOSERS_GOOD", "REVIEW_CLOSERS_MIXED", "REVIEW_HEADLINES", "REVIEW_NEGATIVE", "REVIEW_OPENERS", "REVIEW_POSITIVE", "RIVERS", "SEASONS", "SURNAMES", "TITLE_TEMPLATES", "TOWNS", "WEEKDAYS"]
