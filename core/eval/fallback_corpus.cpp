#include "core/eval/fallback_corpus.hpp"

namespace hpcinfer::eval {

// Written for this project; simple English, a mix of children's stories and short explanatory paragraphs.
std::string_view fallback_corpus() {
  return R"(Once upon a time, there was a little girl named Lily. She loved to play in the park near her house. One day, she saw a big red ball under a tree. She ran to the ball and picked it up. A small boy came and said, "That is my ball." Lily smiled and gave the ball back to him. The boy was happy. They played together until the sun went down, and then they went home to eat dinner.

Tom had a small dog named Max. Max liked to run and jump in the grass. One morning, Max could not find his bone. He looked under the bed and behind the door. Tom helped him look. They found the bone in the garden, next to a pretty flower. Max wagged his tail and licked Tom's face. Tom laughed and said, "You are a good dog, Max."

There was a big tree in the middle of the forest. Many birds lived in the tree. One day, a strong wind came and shook the branches. The birds were scared. A wise old owl said, "Do not be afraid. Hold on tight and the wind will go away." The birds held on to the branches, and soon the wind stopped. The sun came out, and the birds sang a happy song.

Anna wanted to bake a cake for her mom. She got flour, sugar, eggs and milk from the kitchen. Her dad helped her mix everything in a big bowl. They put the cake in the oven and waited. The house smelled sweet. When the cake was ready, Anna put a candle on top. Her mom came home and was very surprised. She gave Anna a big hug.

A river is a stream of water that flows across the land toward a lake or the sea. Rivers begin in hills and mountains, where rain and melting snow collect into small streams. As the streams join, the river grows wider and carries sand and small stones with it. Over many years, a river can cut a deep valley into solid rock. People have lived beside rivers for thousands of years, because rivers give water for drinking and for farms, and boats can carry goods along them.

The moon goes around the Earth about once every month. It does not make its own light; it shines because it reflects light from the Sun. As the moon moves, we see different parts of its bright side, so its shape seems to change from a thin crescent to a full circle and back again. The pull of the moon also raises the tides, so the level of the sea rises and falls twice each day.

Ben and his sister Mia went to the beach with their grandpa. They built a tall sand castle with a wall and a little door. A wave came and washed part of the wall away. Mia was sad, but Ben said, "Let's build it again, bigger and stronger." Grandpa brought shells and sticks, and they made the castle even better than before. At the end of the day, they were tired but very proud.

A computer follows instructions called a program. The program tells the computer what to do, one small step at a time. Some programs add numbers, some show pictures, and some help people write letters or talk to friends far away. A large program is built from many small parts, and each part is tested to make sure it does the right thing. When a part is wrong, the programmer finds the mistake and fixes it.

One night, a little cat named Snow looked up at the sky. She saw many bright stars. "I want to touch a star," she said. She climbed onto the roof, but the stars were still far away. Her friend the mouse said, "The stars are too high for us, but we can watch them together." So Snow and the mouse sat on the roof and watched the stars until they fell asleep.
)";
}

}  // namespace hpcinfer::eval
