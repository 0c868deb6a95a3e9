@tool
extends EditorPlugin
## Usher's editor plugin. It adds nothing to the editor: enabling it only makes the
## UsherClient and UsherServer node types easy to find. Both work without enabling it.
