class_name DemoTheme
extends RefCounted
## The demo's look: one theme, and a monospaced font for room codes in which 0 and O, and 1, I
## and L, cannot be confused (DejaVu Sans Mono Bold, shipped in fonts/ with its licence). Codes
## never use those characters anyway; the font makes what players read aloud unambiguous.

const CODE_FONT_PATH := "res://fonts/DejaVuSansMono-Bold.ttf"


## The font for room codes, loaded from the .ttf at run time (it is exported as a plain file).
static func code_font() -> Font:
	var f := FontFile.new()
	if f.load_dynamic_font(CODE_FONT_PATH) != OK:
		return ThemeDB.fallback_font
	return f


## A label showing [param text] in the code font at [param size].
static func code_label(text: String, size: int = 48) -> Label:
	var l := Label.new()
	l.text = text
	l.add_theme_font_override("font", code_font())
	l.add_theme_font_size_override("font_size", size)
	l.horizontal_alignment = HORIZONTAL_ALIGNMENT_CENTER
	return l
